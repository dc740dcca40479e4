-- scheduler_try_lead --
-- The scheduler's leadership: a session-level advisory lock, held by the connection that took it
-- until that connection closes (a SIGKILLed leader's server backend ends with its socket).
SELECT pg_try_advisory_lock(7368044, 0) AS leading

-- scheduler_resign --
-- Give the leadership up now (closing the connection would too, once its backend has exited).
SELECT pg_advisory_unlock(7368044, 0) AS released

-- scheduler_alive --
-- The leader's lock connection still answers (so its session still holds the lock).
SELECT 1 AS alive

-- scheduler_leader --
-- Who holds the leadership: the application name of the connection holding the lock in this
-- database ("pg-task-layer scheduler pid=<pid> host=<host>") and since when it is connected.
SELECT a.application_name, a.backend_start
  FROM pg_locks AS l
  JOIN pg_stat_activity AS a ON a.pid = l.pid
 WHERE l.locktype = 'advisory' AND l.granted
   AND l.classid = 7368044 AND l.objid = 0 AND l.objsubid = 2
   AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())

-- scheduler_lock_job --
-- One firing of periodic job :job_name at a time (two leaders during a failover wait for each
-- other here); released at the end of the firing's transaction.
SELECT pg_advisory_xact_lock(7368045, hashtext(:job_name))

-- scheduler_last_tick --
-- The latest recorded tick of periodic job :job_name.
SELECT max(tick_at) AS tick_at FROM scheduler_ticks WHERE job_name = :job_name

-- scheduler_record_missed --
-- Missed ticks :ticks of :job_name, with what became of them (:outcome); a tick already
-- recorded by another process stays as that process recorded it.
INSERT INTO scheduler_ticks (job_name, tick_at, outcome)
SELECT :job_name, tick, :outcome FROM unnest(CAST(:ticks AS timestamptz[])) AS tick
ON CONFLICT (job_name, tick_at) DO NOTHING

-- scheduler_claim_tick --
-- Tick :tick_at of :job_name fires here unless another process fired it: no row, nothing to do.
INSERT INTO scheduler_ticks (job_name, tick_at, outcome)
VALUES (:job_name, :tick_at, 'deferred')
ON CONFLICT (job_name, tick_at) DO NOTHING
RETURNING tick_at

-- scheduler_settle_tick --
-- What became of the claimed tick: its job's id, or 'already_queued' (an earlier job waits).
UPDATE scheduler_ticks
   SET outcome = :outcome, procrastinate_job_id = :job_id
 WHERE job_name = :job_name AND tick_at = :tick_at

-- scheduler_latest_ticks --
-- The latest tick of each periodic job in :names, with what became of it and its job's status.
SELECT DISTINCT ON (t.job_name)
       t.job_name, t.tick_at, t.outcome, t.fired_at, t.procrastinate_job_id,
       CAST(j.status AS text) AS job_status
  FROM scheduler_ticks AS t
  LEFT JOIN procrastinate_jobs AS j ON j.id = t.procrastinate_job_id
 WHERE t.job_name = ANY(CAST(:names AS varchar[]))
 ORDER BY t.job_name, t.tick_at DESC
