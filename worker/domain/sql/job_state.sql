-- fetch_jobs --
-- Take up to :limit ready jobs of :queues for worker :worker_id (``tl_fetch_jobs``, migration
-- 0007): procrastinate's order and locks; a suspect alone, only when :idle or after waiting
-- :suspect_wait seconds. Each taken job starts a new run (runs + 1): the run's fence.
SELECT id, status, task_name, priority, lock, queueing_lock, args, scheduled_at, queue_name,
       attempts, worker_id, abort_requested, runs, lost_runs, run_alone, interrupted_runs
  FROM tl_fetch_jobs(CAST(:queues AS varchar[]), :worker_id, :limit, :idle, :suspect_wait)

-- end_runs --
-- End a batch of runs (``tl_end_runs``, migration 0007): :ends is a JSON array of
-- {id, run, action (succeeded, failed, retry, interrupted), result, error, record, retry_at,
-- mask}. Each is a compare-and-set on its run; the status it got, or 'fenced'.
SELECT job_id, status FROM tl_end_runs(CAST(:ends AS jsonb))

-- succeed_and_commit --
-- End run :run of job :job_id as succeeded in the caller's transaction and commit it, in one
-- message (the simple query protocol: the values are inlined as literals). ``tl_succeed_run``
-- (migration 0016) raises SQLSTATE TLF01 when the run was fenced: the error aborts the
-- transaction before COMMIT is read.
SELECT tl_succeed_run(:job_id, :run, CAST(:result AS jsonb), :record, CAST(:mask AS jsonb));
COMMIT

-- release_run --
-- Run :run was taken but never started (its process is stopping): the job waits again as it was.
-- (``status::text``: by primary key, not down the partial index of every doing job; 0017)
UPDATE procrastinate_jobs
   SET status = 'todo', run_alone = false
 WHERE id = :job_id AND runs = :run AND status::text = 'doing'
RETURNING id

-- held_jobs --
-- Jobs worker :worker_id runs, as the database says, taken more than :older_than seconds ago.
SELECT id, runs FROM procrastinate_jobs
 WHERE worker_id = :worker_id AND status = 'doing'
   AND run_started_at < now() - make_interval(secs => :older_than)

-- check_run --
-- Whether job :job_id still belongs to run :run; the row is share-locked until the caller's
-- transaction ends, so that the recovery sweep cannot take the job away before that commit.
SELECT id FROM procrastinate_jobs
 WHERE id = :job_id AND runs = :run AND status::text = 'doing'  -- by primary key (0017)
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

-- ==== retention: deleting finished jobs and their outcomes (worker.maintenance.retention) ====

-- retention_prunable_jobs --
-- Retention: up to :limit finished jobs with ids above :after, by id, whose end is older than
-- their status's cutoff (:failed_before for failed jobs, :finished_before for succeeded,
-- cancelled and aborted ones), with their run counter (the fence of their delete). A finished
-- job with no end event left ended before a prune deleted its events. Never a todo or doing job.
SELECT j.id, j.runs
  FROM procrastinate_jobs AS j
 WHERE j.id > :after
   AND j.status IN ('succeeded', 'failed', 'cancelled', 'aborted')
   AND NOT EXISTS (
       SELECT 1
         FROM procrastinate_events AS e
        WHERE e.job_id = j.id
          AND e.type IN ('succeeded', 'failed', 'cancelled', 'aborted')
          AND e.at >= CASE WHEN j.status = 'failed' THEN CAST(:failed_before AS timestamptz)
                           ELSE CAST(:finished_before AS timestamptz) END
   )
 ORDER BY j.id
 LIMIT :limit

-- retention_delete_jobs --
-- Retention: delete the jobs :ids whose run counter is still :runs (as read by
-- retention_prunable_jobs; a job retried and run since is not deleted) and that are still
-- finished. Events left go by cascade; outcomes stay until retention_delete_outcomes.
DELETE FROM procrastinate_jobs AS j
 USING unnest(CAST(:ids AS bigint[]), CAST(:runs AS integer[])) AS t(id, runs)
 WHERE j.id = t.id AND j.runs = t.runs
   AND j.status IN ('succeeded', 'failed', 'cancelled', 'aborted')
RETURNING j.id

-- retention_orphan_outcomes --
-- Retention: up to :limit outcomes with job ids above :after, by job id, whose job is gone and
-- which finished before their status's cutoff (left by an interrupted prune, or by jobs deleted
-- some other way).
SELECT r.job_id
  FROM task_results AS r
 WHERE r.job_id > :after
   AND r.finished_at < CASE WHEN r.status = 'SUCCESS' THEN CAST(:finished_before AS timestamptz)
                            ELSE CAST(:failed_before AS timestamptz) END
   AND NOT EXISTS (SELECT 1 FROM procrastinate_jobs AS j WHERE j.id = r.job_id)
 ORDER BY r.job_id
 LIMIT :limit

-- retention_delete_outcomes --
-- Retention: delete the outcomes of the jobs :ids that are gone: never an outcome before its job.
DELETE FROM task_results AS r
 WHERE r.job_id = ANY(CAST(:ids AS bigint[]))
   AND NOT EXISTS (SELECT 1 FROM procrastinate_jobs AS j WHERE j.id = r.job_id)
RETURNING r.job_id
