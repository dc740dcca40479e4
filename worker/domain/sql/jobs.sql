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
-- One job with its arguments, outcome and timings (from procrastinate's events).
SELECT j.id, j.queue_name, j.task_name, j.status, j.attempts, j.priority, j.lock,
       j.queueing_lock, j.args, j.scheduled_at, j.worker_id,
       r.status AS outcome, r.result, r.error, r.attempt AS outcome_attempt,
       r.started_at, r.finished_at, r.duration,
       (SELECT min(at) FROM procrastinate_events WHERE job_id = j.id AND type = 'deferred')
           AS deferred_at,
       (SELECT max(at) FROM procrastinate_events WHERE job_id = j.id AND type = 'started')
           AS last_started_at,
       (SELECT max(at) FROM procrastinate_events
         WHERE job_id = j.id AND type IN ('succeeded', 'failed', 'cancelled', 'aborted'))
           AS ended_at
  FROM procrastinate_jobs AS j
  LEFT JOIN task_results AS r ON r.job_id = j.id
 WHERE j.id = :id

-- lock_job_row --
-- The job's status, locked against a concurrent worker while an admin command changes it.
SELECT status, queueing_lock, task_name, args FROM procrastinate_jobs WHERE id = :id FOR UPDATE

-- retry_failed_job --
-- A failed job goes back to the queue now (failed -> todo).
SELECT procrastinate_retry_job_v2(:id, now(), NULL, NULL, NULL)

-- cancel_job --
-- todo -> cancelled; doing -> abort requested (the worker aborts it). Returns the id or NULL.
SELECT procrastinate_cancel_job_v1(:id, :abort, false)

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

-- record_success_and_finish --
-- In the transaction of the task's own writes: record its SUCCESS outcome and finish the job
-- (todo/doing -> succeeded; raises if another run finished it first). One round trip.
WITH recorded AS (
    INSERT INTO task_results AS r (job_id, task_name, queue_name, status, result, error, attempt,
                                   started_at, finished_at, duration)
    VALUES (:job_id, :task_name, :queue_name, 'SUCCESS', CAST(:result AS jsonb), NULL, :attempt,
            :started_at, clock_timestamp(), :duration)
    ON CONFLICT (job_id) DO UPDATE
       SET status = 'SUCCESS', result = EXCLUDED.result, error = NULL,
           attempt = EXCLUDED.attempt, started_at = EXCLUDED.started_at,
           finished_at = EXCLUDED.finished_at, duration = EXCLUDED.duration
)
SELECT procrastinate_finish_job_v1(:job_id, 'succeeded', false)
