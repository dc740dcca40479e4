-- claim_recovery_sweep --
-- Only one process sweeps at a time; the others skip this round (transaction-scoped lock).
SELECT pg_try_advisory_xact_lock(7368042, 1) AS claimed

-- select_stalled_jobs --
-- Running jobs whose worker vanished or stopped beating for :stalled_after seconds, locked so
-- that a concurrent finish by a late worker waits for this sweep.
SELECT job.id, job.task_name, job.queue_name, job.queueing_lock, job.attempts, job.worker_id
  FROM procrastinate_jobs AS job
  LEFT JOIN procrastinate_workers AS w ON w.id = job.worker_id
 WHERE job.status = 'doing'
   AND (job.worker_id IS NULL
        OR w.id IS NULL
        OR w.last_heartbeat < now() - make_interval(secs => :stalled_after))
 ORDER BY job.id
   FOR UPDATE OF job SKIP LOCKED

-- retry_stalled_job --
-- Put a stalled job back in the queue at once (doing -> todo, attempts + 1).
SELECT procrastinate_retry_job_v2(:job_id, now(), NULL, NULL, NULL)

-- waiting_job_with_queueing_lock --
-- The job already waiting with this queueing lock, which makes a retry impossible (and needless).
SELECT id FROM procrastinate_jobs WHERE queueing_lock = :queueing_lock AND status = 'todo'

-- fail_job --
-- Finish a running job as failed.
SELECT procrastinate_finish_job_v1(:job_id, 'failed', false)

