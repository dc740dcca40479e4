-- ping --
-- The database answers.
SELECT 1

-- job_id_at --
-- The first job deferred at or after :at (a binary search over event ids, migration 0013).
SELECT tl_dashboard_job_id_at(CAST(:at AS timestamptz))

-- event_id_at --
-- The first event at or after :at.
SELECT tl_dashboard_event_id_at(CAST(:at AS timestamptz))

-- job_page_columns --
-- What the jobs page shows of a job (the FROM and WHERE are composed by worker.dashboard.jobs).
SELECT j.id, j.queue_name, j.task_name, CAST(j.status AS text) AS status, j.attempts,
       j.lost_runs, j.scheduled_at, j.run_started_at,
       r.status AS outcome, r.finished_at, left(r.error, 160) AS error

-- queue_live_counts --
-- Waiting (ready or scheduled later) and running jobs per queue: the partial index of todo and
-- doing jobs, never the finished ones.
SELECT queue_name,
       count(*) FILTER (WHERE status = 'todo'
                          AND (scheduled_at IS NULL OR scheduled_at <= now())) AS ready,
       count(*) FILTER (WHERE status = 'todo' AND scheduled_at > now()) AS scheduled,
       count(*) FILTER (WHERE status = 'doing') AS running
  FROM procrastinate_jobs
 WHERE status IN ('todo', 'doing')
 GROUP BY queue_name

-- oldest_ready --
-- Seconds the oldest ready job of :queue has waited: among its 100 lowest ids ready now, since
-- its deferral or its scheduled time, whichever is later (a bounded scan).
SELECT extract(epoch FROM now() - min(greatest(j.scheduled_at, e.at)))
  FROM (SELECT id, scheduled_at FROM procrastinate_jobs
         WHERE status = 'todo' AND queue_name = :queue
           AND (scheduled_at IS NULL OR scheduled_at <= now())
         ORDER BY id LIMIT 100) AS j
  LEFT JOIN LATERAL (SELECT min(at) AS at FROM procrastinate_events
                      WHERE job_id = j.id AND type = 'deferred') AS e ON true

-- ended_per_minute --
-- Jobs ended (succeeded, failed, aborted) per minute since event :from_id: a range of the
-- events' primary key, no join.
SELECT date_trunc('minute', at) AS minute, CAST(type AS text) AS type, count(*) AS jobs
  FROM procrastinate_events
 WHERE id >= :from_id AND type IN ('succeeded', 'failed', 'aborted')
 GROUP BY 1, 2

-- failed_per_queue --
-- Jobs failed or aborted per queue since event :from_id.
SELECT j.queue_name, count(*) AS jobs
  FROM procrastinate_events AS e
  JOIN procrastinate_jobs AS j ON j.id = e.job_id
 WHERE e.id >= :from_id AND e.type IN ('failed', 'aborted')
 GROUP BY j.queue_name

-- workers --
-- Workers registered, their heartbeat's age and the jobs they run.
SELECT w.id, w.last_heartbeat, extract(epoch FROM now() - w.last_heartbeat) AS age,
       (SELECT count(*) FROM procrastinate_jobs AS j
         WHERE j.worker_id = w.id AND j.status = 'doing') AS running
  FROM procrastinate_workers AS w
 ORDER BY w.id

-- paused_queues --
SELECT queue_name, paused_by, paused_at FROM dashboard_queue_pauses ORDER BY queue_name

-- job_events --
-- A job's event timeline.
SELECT CAST(type AS text) AS type, at FROM procrastinate_events WHERE job_id = :id ORDER BY id

-- job_statuses_of_job --
-- The Dify job statuses (polled by the console) that a job writes.
SELECT kind, job_id, status, error, updated_at, finished_at
  FROM job_statuses WHERE procrastinate_job_id = :id ORDER BY created_at

-- dataset_documents --
-- Documents by indexing status per dataset, for the datasets most recently changed.
WITH recent AS (
    SELECT id, name FROM datasets ORDER BY updated_at DESC LIMIT :limit
)
SELECT r.id, r.name, d.indexing_status AS status, count(d.id) AS documents
  FROM recent AS r
  LEFT JOIN documents AS d ON d.dataset_id = r.id
 GROUP BY r.id, r.name, d.indexing_status

-- documents_in_progress --
-- Documents being indexed, with their segments' progress.
SELECT d.id, d.dataset_id, d.name, d.indexing_status AS status, d.updated_at, d.is_paused,
       (SELECT count(*) FROM document_segments AS s WHERE s.document_id = d.id) AS segments,
       (SELECT count(*) FROM document_segments AS s
         WHERE s.document_id = d.id AND s.status = 'completed') AS completed
  FROM documents AS d
 WHERE d.indexing_status IN ('waiting', 'parsing', 'cleaning', 'splitting', 'indexing')
 ORDER BY d.updated_at
 LIMIT :limit

-- failed_documents --
-- Documents whose indexing failed, the latest first, with their error.
SELECT id, dataset_id, name, error, updated_at
  FROM documents
 WHERE indexing_status = 'error'
 ORDER BY updated_at DESC
 LIMIT :limit

-- document_for_recovery --
-- A document, locked while its recovery is deferred.
SELECT id, dataset_id, indexing_status AS status, is_paused
  FROM documents WHERE id = CAST(:id AS uuid) FOR UPDATE

-- last_job_of_task --
-- The latest job of task :task, with its outcome.
SELECT j.id, CAST(j.status AS text) AS status, r.result, r.error, r.finished_at
  FROM procrastinate_jobs AS j
  LEFT JOIN task_results AS r ON r.job_id = j.id
 WHERE j.task_name = :task
 ORDER BY j.id DESC
 LIMIT 1

-- mail_by_status --
SELECT status, count(*) AS deliveries FROM mail_deliveries GROUP BY status ORDER BY status

-- mail_errors --
-- The latest deliveries with an error.
SELECT created_at, mail_type, recipient, status, attempts, error, job_id
  FROM mail_deliveries
 WHERE error IS NOT NULL
 ORDER BY created_at DESC
 LIMIT :limit

-- actions_recent --
SELECT at, actor, remote_addr, action, target, outcome
  FROM dashboard_actions ORDER BY id DESC LIMIT :limit

-- record_action --
INSERT INTO dashboard_actions (actor, remote_addr, action, target, outcome)
VALUES (:actor, :remote_addr, :action, :target, :outcome)

-- pause_queue --
INSERT INTO dashboard_queue_pauses (queue_name, paused_by) VALUES (:queue, :actor)
ON CONFLICT (queue_name) DO NOTHING
RETURNING queue_name

-- resume_queue --
-- Resumed: its workers are woken (their LISTEN) so that they fetch at once.
WITH gone AS (
    DELETE FROM dashboard_queue_pauses WHERE queue_name = :queue RETURNING queue_name
)
SELECT queue_name,
       pg_notify('procrastinate_queue_v1#' || queue_name,
                 json_build_object('type', 'job_inserted', 'job_id', 0)::text)
  FROM gone

-- metric_state_for_fold --
-- The fold state, locked (no row: another process folds, or retention deletes, right now).
-- settled: the candidate was read at least a second ago, so that every transaction that took an
-- event id below it has its transaction id by now.
SELECT folded_upto, candidate_upto, candidate_xmax,
       candidate_at < now() - interval '1 second' AS settled,
       CAST(CAST(pg_snapshot_xmin(pg_current_snapshot()) AS text) AS bigint) AS xmin
  FROM dashboard_metric_state
 WHERE id = 1
   FOR UPDATE SKIP LOCKED

-- metric_state_set_xmax --
-- Every transaction below this id must end before the candidate is folded.
UPDATE dashboard_metric_state
   SET candidate_xmax = CAST(CAST(pg_snapshot_xmax(pg_current_snapshot()) AS text) AS bigint)
 WHERE id = 1

-- metric_fold_events --
-- Add the events in (:lo, :hi] to the totals and move the fold point to :hi (at most the
-- candidate's id, whose range is final).
WITH folded AS (
    SELECT tl_dashboard_add_totals(ARRAY(
        SELECT e FROM procrastinate_events AS e WHERE e.id > :lo AND e.id <= :hi))
)
UPDATE dashboard_metric_state
   SET folded_upto = :hi
 WHERE id = 1 AND EXISTS (SELECT 1 FROM folded)

-- metric_state_next_candidate --
-- The candidate is folded: the next one is the newest event.
UPDATE dashboard_metric_state
   SET candidate_upto = greatest(candidate_upto,
                                 (SELECT coalesce(max(id), 0) FROM procrastinate_events)),
       candidate_at = now(),
       candidate_xmax = NULL
 WHERE id = 1

-- metric_totals --
SELECT queue_name, task_name, metric, value FROM dashboard_job_totals

-- metric_unfolded --
-- What the events above the fold point add.
SELECT queue_name, task_name, metric, value
  FROM tl_dashboard_event_totals(ARRAY(
      SELECT e FROM procrastinate_events AS e
       WHERE e.id > (SELECT folded_upto FROM dashboard_metric_state WHERE id = 1)))

-- metric_lost_runs --
-- Lost runs of the jobs still there (those of deleted jobs are in the totals).
SELECT queue_name, task_name, 'lost_runs' AS metric, sum(lost_runs) AS value
  FROM procrastinate_jobs
 WHERE lost_runs > 0
 GROUP BY queue_name, task_name

-- metric_ended_badly --
SELECT queue_name, CAST(status AS text) AS status, count(*) AS jobs
  FROM procrastinate_jobs
 WHERE status IN ('failed', 'cancelled', 'aborted')
 GROUP BY queue_name, status

-- metric_documents --
SELECT indexing_status AS status, count(*) AS documents FROM documents GROUP BY indexing_status
