-- fetch_jobs --
-- Take ready jobs of :queues for worker :worker_id, in procrastinate's order (priority, then id;
-- never two jobs of one lock at once). A job that was lost with a dead worker (a suspect) is taken
-- alone: only by an idle process (:idle), or by any once it has waited :suspect_wait seconds;
-- otherwise up to :limit other jobs. Each taken job starts a new run (runs + 1): the run's fence.
WITH suspect AS (
    SELECT jobs.id
      FROM procrastinate_jobs AS jobs
     WHERE jobs.status = 'todo'
       AND jobs.lost_runs > 0
       AND jobs.queue_name = ANY(CAST(:queues AS varchar[]))
       AND (jobs.scheduled_at IS NULL OR jobs.scheduled_at <= now())
       AND (CAST(:idle AS boolean)
            OR jobs.scheduled_at < now() - make_interval(secs => :suspect_wait))
       AND NOT EXISTS (
           SELECT 1
             FROM procrastinate_jobs AS other
            WHERE jobs.lock IS NOT NULL
              AND other.lock = jobs.lock
              AND (other.status = 'doing'
                   OR (other.status = 'todo'
                       AND (other.priority > jobs.priority
                            OR (other.priority = jobs.priority AND other.id < jobs.id))))
       )
     ORDER BY jobs.priority DESC, jobs.id
     LIMIT 1
       FOR UPDATE OF jobs SKIP LOCKED
), ready AS (
    SELECT jobs.id
      FROM procrastinate_jobs AS jobs
     WHERE NOT EXISTS (SELECT 1 FROM suspect)
       AND jobs.status = 'todo'
       AND jobs.lost_runs = 0
       AND jobs.queue_name = ANY(CAST(:queues AS varchar[]))
       AND (jobs.scheduled_at IS NULL OR jobs.scheduled_at <= now())
       AND NOT EXISTS (
           SELECT 1
             FROM procrastinate_jobs AS other
            WHERE jobs.lock IS NOT NULL
              AND other.lock = jobs.lock
              AND (other.status = 'doing'
                   OR (other.status = 'todo'
                       AND (other.priority > jobs.priority
                            OR (other.priority = jobs.priority AND other.id < jobs.id))))
       )
     ORDER BY jobs.priority DESC, jobs.id
     LIMIT :limit
       FOR UPDATE OF jobs SKIP LOCKED
), taken AS (
    SELECT id, true AS alone FROM suspect
    UNION ALL
    SELECT id, false AS alone FROM ready
)
UPDATE procrastinate_jobs AS j
   SET status = 'doing',
       worker_id = :worker_id,
       runs = j.runs + 1,
       run_started_at = now(),
       run_alone = taken.alone
  FROM taken
 WHERE j.id = taken.id
RETURNING j.id, j.status, j.task_name, j.priority, j.lock, j.queueing_lock, j.args,
          j.scheduled_at, j.queue_name, j.attempts, j.worker_id, j.abort_requested, j.runs,
          j.lost_runs, j.run_alone, j.interrupted_runs

-- end_run --
-- Run :run of job :job_id ended as :status ('succeeded' or 'failed'; 'failed' becomes 'aborted'
-- when an abort was requested), if the job still belongs to that run: a compare-and-set. Erases
-- the secret arguments (:mask, a JSON object, or NULL) and, with :record, records the outcome
-- (finished at this statement's clock: the end of the job's transaction). No row: fenced off.
WITH ended AS (
    UPDATE procrastinate_jobs
       SET status = CASE WHEN abort_requested AND :status = 'failed'
                         THEN CAST('aborted' AS procrastinate_job_status)
                         ELSE CAST(:status AS procrastinate_job_status) END,
           attempts = attempts + 1,
           abort_requested = false,
           args = args || coalesce(CAST(:mask AS jsonb), '{}')
     WHERE id = :job_id AND runs = :run AND status = 'doing'
    RETURNING id, status, task_name, queue_name, attempts, run_started_at
), recorded AS (
    INSERT INTO task_results AS r (job_id, task_name, queue_name, status, result, error, attempt,
                                   started_at, finished_at, duration)
    SELECT e.id, e.task_name, e.queue_name,
           CASE WHEN e.status = 'succeeded' THEN 'SUCCESS' ELSE 'FAILURE' END,
           CAST(:result AS jsonb), :error, e.attempts,
           e.run_started_at, clock_timestamp(),
           extract(epoch FROM clock_timestamp() - e.run_started_at)
      FROM ended AS e
     WHERE CAST(:record AS boolean)
    ON CONFLICT (job_id) DO UPDATE
       SET status = EXCLUDED.status, result = EXCLUDED.result, error = EXCLUDED.error,
           attempt = EXCLUDED.attempt, started_at = EXCLUDED.started_at,
           finished_at = EXCLUDED.finished_at, duration = EXCLUDED.duration
     WHERE r.status <> 'SUCCESS'
)
SELECT id, CAST(status AS text) AS status FROM ended

-- requeue_run --
-- Run :run of job :job_id failed and goes back to the queue at :retry_at, if the job still
-- belongs to that run. :counts says whether the run uses the task's retry budget (attempts + 1)
-- or was only interrupted by a broken database connection (interrupted_runs + 1). An abort
-- request ends it as 'aborted' instead; a job with the same queueing lock already waiting ends
-- it as 'failed' (that job does this work). Records the outcome with :error; erases the secret
-- arguments (:mask) when the job ends here. No row: fenced off.
WITH target AS (
    SELECT j.id,
           CASE WHEN j.abort_requested THEN 'aborted'
                WHEN j.queueing_lock IS NOT NULL AND EXISTS (
                    SELECT 1 FROM procrastinate_jobs AS o
                     WHERE o.queueing_lock = j.queueing_lock AND o.status = 'todo'
                       AND o.id <> j.id) THEN 'failed'
                ELSE 'todo' END AS next_status
      FROM procrastinate_jobs AS j
     WHERE j.id = :job_id AND j.runs = :run AND j.status = 'doing'
       FOR UPDATE
), moved AS (
    UPDATE procrastinate_jobs AS j
       SET status = CAST(t.next_status AS procrastinate_job_status),
           attempts = j.attempts + CASE WHEN CAST(:counts AS boolean) THEN 1 ELSE 0 END,
           interrupted_runs = j.interrupted_runs
                              + CASE WHEN CAST(:counts AS boolean) THEN 0 ELSE 1 END,
           scheduled_at = CASE WHEN t.next_status = 'todo' THEN :retry_at ELSE j.scheduled_at END,
           abort_requested = false,
           args = CASE WHEN t.next_status = 'todo' THEN j.args
                       ELSE j.args || coalesce(CAST(:mask AS jsonb), '{}') END
      FROM target AS t
     WHERE j.id = t.id
    RETURNING j.id, t.next_status, j.task_name, j.queue_name, j.attempts, j.run_started_at,
              j.queueing_lock
), recorded AS (
    INSERT INTO task_results AS r (job_id, task_name, queue_name, status, result, error, attempt,
                                   started_at, finished_at, duration)
    SELECT m.id, m.task_name, m.queue_name,
           CASE WHEN m.next_status = 'todo' THEN 'RETRY' ELSE 'FAILURE' END, NULL,
           CASE m.next_status
                WHEN 'failed' THEN :error || '; Superseded: not retried, another job with '
                                  || 'queueing lock ' || quote_literal(m.queueing_lock)
                                  || ' is already waiting and does this work'
                WHEN 'aborted' THEN :error || '; aborted on request'
                ELSE :error END,
           m.attempts + CASE WHEN m.next_status = 'todo' AND CAST(:counts AS boolean)
                             THEN 0 ELSE 1 END,
           m.run_started_at, clock_timestamp(),
           extract(epoch FROM clock_timestamp() - m.run_started_at)
      FROM moved AS m
    ON CONFLICT (job_id) DO UPDATE
       SET status = EXCLUDED.status, result = NULL, error = EXCLUDED.error,
           attempt = EXCLUDED.attempt, started_at = EXCLUDED.started_at,
           finished_at = EXCLUDED.finished_at, duration = EXCLUDED.duration
     WHERE r.status <> 'SUCCESS'
)
SELECT id, next_status AS status FROM moved

-- release_run --
-- Run :run was taken but never started (its process is stopping): the job waits again as it was.
UPDATE procrastinate_jobs
   SET status = 'todo', run_alone = false
 WHERE id = :job_id AND runs = :run AND status = 'doing'
RETURNING id

-- check_run --
-- Whether job :job_id still belongs to run :run; the row is share-locked until the caller's
-- transaction ends, so that the recovery sweep cannot take the job away before that commit.
SELECT id FROM procrastinate_jobs
 WHERE id = :job_id AND runs = :run AND status = 'doing'
   FOR SHARE

-- claim_recovery_sweep --
-- Only one process sweeps at a time; the others skip this round (transaction-scoped lock).
SELECT pg_try_advisory_xact_lock(7368042, 1) AS claimed

-- recover_stalled_jobs --
-- Running jobs whose worker vanished or stopped beating for :stalled_after seconds: each run is
-- taken away (compare-and-set on its run) and counted as lost (not as an attempt). A run lost
-- while the job ran alone is blamed on it; at :max_blamed such runs it is failed as poison. A job
-- whose abort was requested ends 'aborted'; one whose queueing lock a waiting job holds ends
-- 'failed' (that job does the work); the others go back to the queue now, as suspects (run
-- alone next time), and their queue is notified. :masks maps task names to the JSON objects that
-- erase their secret arguments.
WITH stalled AS (
    SELECT job.id, job.runs, job.run_alone, job.blamed_runs, job.queueing_lock,
           job.abort_requested
      FROM procrastinate_jobs AS job
      LEFT JOIN procrastinate_workers AS w ON w.id = job.worker_id
     WHERE job.status = 'doing'
       AND (job.worker_id IS NULL
            OR w.id IS NULL
            OR w.last_heartbeat < now() - make_interval(secs => :stalled_after))
     ORDER BY job.id
       FOR UPDATE OF job SKIP LOCKED
), decided AS (
    SELECT s.id, s.runs,
           s.blamed_runs + CASE WHEN s.run_alone THEN 1 ELSE 0 END AS blamed,
           CASE WHEN s.abort_requested THEN 'aborted'
                WHEN s.blamed_runs + CASE WHEN s.run_alone THEN 1 ELSE 0 END >= :max_blamed
                    THEN 'poison'
                WHEN s.queueing_lock IS NOT NULL AND EXISTS (
                    SELECT 1 FROM procrastinate_jobs AS o
                     WHERE o.queueing_lock = s.queueing_lock AND o.status = 'todo')
                    THEN 'superseded'
                ELSE 'requeued' END AS verdict
      FROM stalled AS s
), moved AS (
    UPDATE procrastinate_jobs AS j
       SET status = CAST(CASE d.verdict WHEN 'requeued' THEN 'todo'
                                        WHEN 'aborted' THEN 'aborted'
                                        ELSE 'failed' END AS procrastinate_job_status),
           lost_runs = j.lost_runs + 1,
           blamed_runs = d.blamed,
           run_alone = false,
           abort_requested = false,
           scheduled_at = CASE WHEN d.verdict = 'requeued' THEN now() ELSE j.scheduled_at END,
           args = CASE WHEN d.verdict = 'requeued' THEN j.args
                       ELSE j.args || coalesce(CAST(:masks AS jsonb) -> j.task_name, '{}') END
      FROM decided AS d
     WHERE j.id = d.id AND j.runs = d.runs AND j.status = 'doing'
    RETURNING j.id, d.verdict, j.task_name, j.queue_name, j.attempts, j.lost_runs, d.blamed,
              j.queueing_lock, j.run_started_at
), recorded AS (
    INSERT INTO task_results AS r (job_id, task_name, queue_name, status, result, error, attempt,
                                   started_at, finished_at, duration)
    SELECT m.id, m.task_name, m.queue_name, 'FAILURE', NULL,
           CASE m.verdict
                WHEN 'poison' THEN 'WorkerLost: its worker died during ' || m.blamed
                                   || ' run(s) in which it ran alone (' || m.lost_runs
                                   || ' lost run(s) in all): it is taken to be what kills its '
                                   || 'workers and is not run again'
                WHEN 'superseded' THEN 'WorkerLost: the worker died; another job already waits '
                                       || 'with queueing lock ' || quote_literal(m.queueing_lock)
                                       || ' and does this work instead'
                ELSE 'WorkerLost: the worker died; the job was aborted on request' END,
           m.attempts + 1, coalesce(m.run_started_at, now()), clock_timestamp(), 0
      FROM moved AS m
     WHERE m.verdict <> 'requeued'
    ON CONFLICT (job_id) DO UPDATE
       SET status = EXCLUDED.status, result = NULL, error = EXCLUDED.error,
           attempt = EXCLUDED.attempt, finished_at = EXCLUDED.finished_at
     WHERE r.status <> 'SUCCESS'
), notified AS (
    SELECT pg_notify('procrastinate_queue_v1#' || queue_name,
                     json_build_object('type', 'job_inserted', 'job_id', id)::text)
      FROM moved
     WHERE verdict = 'requeued'
)
SELECT m.id, m.verdict, m.lost_runs, m.blamed, (SELECT count(*) FROM notified) AS notified
  FROM moved AS m
 ORDER BY m.id

-- prune_dead_workers --
-- Forget workers silent for :older_than seconds that hold no running job.
DELETE FROM procrastinate_workers AS w
 WHERE w.last_heartbeat < now() - make_interval(secs => :older_than)
   AND NOT EXISTS (SELECT 1 FROM procrastinate_jobs AS j
                    WHERE j.worker_id = w.id AND j.status = 'doing')

-- register_worker --
-- A new worker row; its id goes on every job the process fetches.
INSERT INTO procrastinate_workers (last_heartbeat) VALUES (now()) RETURNING id

-- beat --
-- The worker is alive. No row: its row was removed (it was presumed dead): register again.
UPDATE procrastinate_workers SET last_heartbeat = now() WHERE id = :worker_id RETURNING id

-- unregister_worker --
-- The worker stops (its jobs are finished or left to the recovery sweep).
DELETE FROM procrastinate_workers WHERE id = :worker_id

-- lock_job_row --
-- The job's status, locked against a concurrent worker while an admin command changes it.
SELECT status, queueing_lock, task_name, args FROM procrastinate_jobs WHERE id = :id FOR UPDATE

-- waiting_job_with_queueing_lock --
-- The job already waiting with this queueing lock, which makes a retry impossible (and needless).
SELECT id FROM procrastinate_jobs WHERE queueing_lock = :queueing_lock AND status = 'todo'

-- retry_failed_job --
-- A failed job goes back to the queue now (failed -> todo).
UPDATE procrastinate_jobs
   SET status = 'todo', scheduled_at = now()
 WHERE id = :id AND status = 'failed'

-- cancel_waiting_job --
-- todo -> cancelled, its secret arguments (:mask) erased. No row: it was not waiting.
UPDATE procrastinate_jobs
   SET status = 'cancelled', args = args || coalesce(CAST(:mask AS jsonb), '{}')
 WHERE id = :id AND status = 'todo'
RETURNING id

-- request_abort --
-- A running job is asked to stop: its run ends 'aborted' unless it succeeds first.
UPDATE procrastinate_jobs SET abort_requested = true
 WHERE id = :id AND status = 'doing'
RETURNING id
