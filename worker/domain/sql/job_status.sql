-- job_status_read --
-- A polled job's recorded status with the state of the procrastinate job running it (NULL when
-- that job is gone) and its recorded error, by Dify's job id and kind.
SELECT s.status,
       s.error,
       s.procrastinate_job_id,
       CAST(j.status AS text) AS job_status,
       j.attempts,
       r.error AS outcome_error
  FROM job_statuses AS s
  LEFT JOIN procrastinate_jobs AS j ON j.id = s.procrastinate_job_id
  LEFT JOIN task_results AS r ON r.job_id = s.procrastinate_job_id
 WHERE s.job_id = :job_id
   AND s.kind = :kind

-- job_status_of_queued --
-- Dify's job id of the polled job waiting with this queueing lock (the one a refused deferral
-- conflicted with), whatever its kind.
SELECT s.job_id
  FROM procrastinate_jobs AS j
  JOIN job_statuses AS s ON s.procrastinate_job_id = j.id
 WHERE j.queueing_lock = :queueing_lock
   AND j.status = 'todo'
 LIMIT 1
