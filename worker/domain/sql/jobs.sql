-- list_jobs --
-- Jobs, newest first, filtered by queue, status and task (NULL = any), with their outcome.
SELECT j.id, j.queue_name, j.task_name, j.status, j.attempts, j.scheduled_at,
       j.lock, j.queueing_lock, r.status AS outcome
  FROM procrastinate_jobs AS j
  LEFT JOIN task_results AS r ON r.job_id = j.id
 WHERE (CAST(:queue AS varchar) IS NULL OR j.queue_name = :queue)
   AND (CAST(:status AS varchar) IS NULL OR j.status = CAST(:status AS procrastinate_job_status))
   AND (CAST(:task AS varchar) IS NULL OR j.task_name = :task)
 ORDER BY j.id DESC
 LIMIT :limit

-- show_job --
-- One job with its arguments, outcome, runs and timings: started = when its last run was
-- fetched, finished = when its last run's transaction ended (the outcome's clock), else the
-- end event of procrastinate (a statement of its own); how far a long job got (its progress).
SELECT j.id, j.queue_name, j.task_name, j.status, j.attempts, j.priority, j.lock,
       j.queueing_lock, j.args, j.scheduled_at, j.worker_id, j.runs, j.lost_runs,
       j.blamed_runs, j.interrupted_runs,
       r.status AS outcome, r.result, r.error, r.attempt AS outcome_attempt,
       r.started_at, r.finished_at, r.duration,
       p.progress,
       (SELECT min(at) FROM procrastinate_events WHERE job_id = j.id AND type = 'deferred')
           AS deferred_at,
       coalesce(j.run_started_at,
                (SELECT max(at) FROM procrastinate_events
                  WHERE job_id = j.id AND type = 'started')) AS last_started_at,
       (SELECT max(at) FROM procrastinate_events
         WHERE job_id = j.id AND type IN ('succeeded', 'failed', 'cancelled', 'aborted'))
           AS ended_at
  FROM procrastinate_jobs AS j
  LEFT JOIN task_results AS r ON r.job_id = j.id
  LEFT JOIN job_progress AS p ON p.job_id = j.id
 WHERE j.id = :id

-- queue_stats --
-- Per queue: jobs by status, and the age in seconds of the oldest job ready to run.
SELECT queue_name, status::text AS status, count(*) AS jobs,
       extract(epoch FROM now() - min(coalesce(scheduled_at, e.at)) FILTER (
           WHERE status = 'todo' AND (scheduled_at IS NULL OR scheduled_at <= now())
       )) AS oldest_waiting
  FROM procrastinate_jobs AS j
  LEFT JOIN LATERAL (
      SELECT min(at) AS at FROM procrastinate_events WHERE job_id = j.id AND type = 'deferred'
  ) AS e ON true
 GROUP BY queue_name, status
