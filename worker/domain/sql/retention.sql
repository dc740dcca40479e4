-- retention_delete_job_events --
-- Up to :limit events of the jobs :ids whose run counter is still :runs and that are still
-- finished: the history of jobs about to be deleted (retention_delete_jobs), deleted first so
-- that no transaction deletes more than :limit rows.
DELETE FROM procrastinate_events
 WHERE id IN (
       SELECT e.id
         FROM procrastinate_events AS e
         JOIN unnest(CAST(:ids AS bigint[]), CAST(:runs AS integer[])) AS t(id, runs)
              ON t.id = e.job_id
         JOIN procrastinate_jobs AS j ON j.id = t.id AND j.runs = t.runs
        WHERE j.status IN ('succeeded', 'failed', 'cancelled', 'aborted')
        LIMIT :limit
 )
RETURNING id

-- retention_count_job_events --
-- Dry run: events of the jobs :ids.
SELECT count(*) FROM procrastinate_events WHERE job_id = ANY(CAST(:ids AS bigint[]))

-- retention_count_outcomes --
-- Dry run: outcomes of the jobs :ids.
SELECT count(*) FROM task_results WHERE job_id = ANY(CAST(:ids AS bigint[]))

-- retention_delete_mail_deliveries --
-- Up to :limit delivery records created before :before whose job neither waits nor runs, after
-- the keyset (:after_at, :after_id), oldest first; returns their keys for the next batch.
WITH doomed AS (
    SELECT d.id
      FROM mail_deliveries AS d
     WHERE d.created_at < :before
       AND (d.created_at, d.id) > (CAST(:after_at AS timestamptz), CAST(:after_id AS uuid))
       AND NOT EXISTS (SELECT 1 FROM procrastinate_jobs AS j
                        WHERE j.id = d.job_id AND j.status IN ('todo', 'doing'))
     ORDER BY d.created_at, d.id
     LIMIT :limit
)
DELETE FROM mail_deliveries AS m
 USING doomed
 WHERE m.id = doomed.id
RETURNING m.created_at, m.id

-- retention_count_mail_deliveries --
-- Dry run: delivery records created before :before whose job neither waits nor runs.
SELECT count(*)
  FROM mail_deliveries AS d
 WHERE d.created_at < :before
   AND NOT EXISTS (SELECT 1 FROM procrastinate_jobs AS j
                    WHERE j.id = d.job_id AND j.status IN ('todo', 'doing'))

-- retention_delete_scheduler_ticks --
-- Up to :limit scheduler ticks older than :before, oldest first, but each job's latest (what
-- `manage.py schedule` shows, and where its catch-up starts).
WITH doomed AS (
    SELECT t.job_name, t.tick_at
      FROM scheduler_ticks AS t
     WHERE t.tick_at < :before
       AND t.tick_at < (SELECT max(l.tick_at) FROM scheduler_ticks AS l
                         WHERE l.job_name = t.job_name)
     ORDER BY t.tick_at
     LIMIT :limit
)
DELETE FROM scheduler_ticks AS s
 USING doomed
 WHERE s.job_name = doomed.job_name AND s.tick_at = doomed.tick_at
RETURNING s.tick_at

-- retention_count_scheduler_ticks --
-- Dry run: scheduler ticks older than :before, but each job's latest.
SELECT count(*)
  FROM scheduler_ticks AS t
 WHERE t.tick_at < :before
   AND t.tick_at < (SELECT max(l.tick_at) FROM scheduler_ticks AS l WHERE l.job_name = t.job_name)

-- retention_delete_job_statuses --
-- Up to :limit finished job statuses (completed: :finished_before; error: :failed_before), oldest
-- first; a waiting or processing one is never deleted.
WITH doomed AS (
    SELECT s.job_id, s.kind
      FROM job_statuses AS s
     WHERE s.finished_at < greatest(CAST(:finished_before AS timestamptz),
                                    CAST(:failed_before AS timestamptz))
       AND s.status IN ('completed', 'error')
       AND s.finished_at < CASE WHEN s.status = 'error' THEN CAST(:failed_before AS timestamptz)
                                ELSE CAST(:finished_before AS timestamptz) END
     ORDER BY s.finished_at
     LIMIT :limit
)
DELETE FROM job_statuses AS j
 USING doomed
 WHERE j.job_id = doomed.job_id AND j.kind = doomed.kind
RETURNING j.job_id

-- retention_count_job_statuses --
-- Dry run: finished job statuses past their cutoff.
SELECT count(*)
  FROM job_statuses AS s
 WHERE s.status IN ('completed', 'error')
   AND s.finished_at < CASE WHEN s.status = 'error' THEN CAST(:failed_before AS timestamptz)
                            ELSE CAST(:finished_before AS timestamptz) END
