"""batched fetch and end of job runs, as server-side functions

``tl_fetch_jobs`` takes up to a number of ready jobs of some queues in one call, with
procrastinate's semantics (priority then id, ``scheduled_at``, never two ``doing`` jobs of one
lock, within a batch too), a suspect (a job lost with a dead worker) alone. ``tl_end_runs`` ends a
batch of runs in one call: each a compare-and-set on its run (fenced runs are reported, not
written), with its outcome row and the erasure of its secret arguments; the end of a job holding a
lock, or a retry due now, notifies its queue so that whatever waited for it starts at once. Both are plans cached by
the server, called by ``worker.jobs.state``.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_LOCK_FREE = """
       NOT EXISTS (
           SELECT 1
             FROM procrastinate_jobs AS other
            WHERE jobs.lock IS NOT NULL
              AND other.lock = jobs.lock
              AND (other.status = 'doing'
                   OR (other.status = 'todo'
                       AND (other.priority > jobs.priority
                            OR (other.priority = jobs.priority AND other.id < jobs.id)))))
"""

FETCH = f"""
CREATE FUNCTION tl_fetch_jobs(
    p_queues character varying[],
    p_worker_id bigint,
    p_limit integer,
    p_idle boolean,
    p_suspect_wait double precision
) RETURNS SETOF procrastinate_jobs
  LANGUAGE sql
AS $$
WITH suspect AS (
    SELECT jobs.id
      FROM procrastinate_jobs AS jobs
     WHERE jobs.status = 'todo'
       AND jobs.lost_runs > 0
       AND jobs.queue_name = ANY(p_queues)
       AND (jobs.scheduled_at IS NULL OR jobs.scheduled_at <= now())
       AND (p_idle OR jobs.scheduled_at < now() - make_interval(secs => p_suspect_wait))
       AND {_LOCK_FREE}
     ORDER BY jobs.priority DESC, jobs.id
     LIMIT 1
       FOR UPDATE OF jobs SKIP LOCKED
), ready AS (
    SELECT jobs.id
      FROM procrastinate_jobs AS jobs
     WHERE NOT EXISTS (SELECT 1 FROM suspect)
       AND jobs.status = 'todo'
       AND jobs.lost_runs = 0
       AND jobs.queue_name = ANY(p_queues)
       AND (jobs.scheduled_at IS NULL OR jobs.scheduled_at <= now())
       AND {_LOCK_FREE}
     ORDER BY jobs.priority DESC, jobs.id
     LIMIT p_limit
       FOR UPDATE OF jobs SKIP LOCKED
), taken AS (
    SELECT id, true AS alone FROM suspect
    UNION ALL
    SELECT id, false AS alone FROM ready
), started AS (
    UPDATE procrastinate_jobs AS j
       SET status = 'doing',
           worker_id = p_worker_id,
           runs = j.runs + 1,
           run_started_at = now(),
           run_alone = taken.alone
      FROM taken
     WHERE j.id = taken.id
    RETURNING j.*
)
SELECT * FROM started ORDER BY priority DESC, id
$$;
"""

END = """
CREATE FUNCTION tl_end_runs(p_ends jsonb)
RETURNS TABLE (job_id bigint, status text)
  LANGUAGE plpgsql
AS $$
DECLARE
    e record;
    j procrastinate_jobs;
    next_status procrastinate_job_status;
    outcome text;
    message text;
BEGIN
    FOR e IN
        SELECT *
          FROM jsonb_to_recordset(p_ends) AS x(
              id bigint, run integer, action text, result jsonb, error text, record boolean,
              retry_at timestamptz, mask jsonb)
    LOOP
        SELECT * INTO j
          FROM procrastinate_jobs AS p
         WHERE p.id = e.id AND p.runs = e.run AND p.status = 'doing'
           FOR UPDATE;
        IF NOT FOUND THEN
            job_id := e.id;
            status := 'fenced';
            RETURN NEXT;
            CONTINUE;
        END IF;
        message := e.error;
        IF e.action = 'succeeded' THEN
            next_status := 'succeeded';
            outcome := 'SUCCESS';
        ELSIF j.abort_requested THEN
            next_status := 'aborted';
            outcome := 'FAILURE';
            message := message || '; aborted on request';
        ELSIF e.action = 'failed' THEN
            next_status := 'failed';
            outcome := 'FAILURE';
        ELSIF j.queueing_lock IS NOT NULL AND EXISTS (
            SELECT 1 FROM procrastinate_jobs AS o
             WHERE o.queueing_lock = j.queueing_lock AND o.status = 'todo' AND o.id <> j.id
        ) THEN
            next_status := 'failed';
            outcome := 'FAILURE';
            message := message || '; Superseded: not retried, another job with queueing lock '
                       || quote_literal(j.queueing_lock) || ' is already waiting and does this work';
        ELSE
            next_status := 'todo';
            outcome := 'RETRY';
        END IF;
        UPDATE procrastinate_jobs AS p
           SET status = next_status,
               attempts = p.attempts
                          + CASE WHEN e.action = 'interrupted' AND next_status = 'todo'
                                 THEN 0 ELSE 1 END,
               interrupted_runs = p.interrupted_runs
                                  + CASE WHEN e.action = 'interrupted' THEN 1 ELSE 0 END,
               scheduled_at = CASE WHEN next_status = 'todo' THEN e.retry_at
                                   ELSE p.scheduled_at END,
               abort_requested = false,
               args = CASE WHEN next_status = 'todo' THEN p.args
                           ELSE p.args || coalesce(e.mask, '{}') END
         WHERE p.id = e.id;
        IF j.lock IS NOT NULL OR (next_status = 'todo' AND e.retry_at <= now()) THEN
            -- a job waiting for this lock, or this retry, may start now: wake the queue's
            -- workers, in every process (delivered at commit)
            PERFORM pg_notify('procrastinate_queue_v1#' || j.queue_name,
                              json_build_object('type', 'job_inserted', 'job_id', e.id)::text);
        END IF;
        IF e.record OR outcome <> 'SUCCESS' THEN
            INSERT INTO task_results AS r (job_id, task_name, queue_name, status, result, error,
                                           attempt, started_at, finished_at, duration)
            VALUES (e.id, j.task_name, j.queue_name, outcome,
                    CASE WHEN outcome = 'SUCCESS' THEN e.result END, message,
                    j.attempts + 1, j.run_started_at, clock_timestamp(),
                    extract(epoch FROM clock_timestamp() - j.run_started_at))
            ON CONFLICT ON CONSTRAINT pk_task_results DO UPDATE
               SET status = EXCLUDED.status, result = EXCLUDED.result, error = EXCLUDED.error,
                   attempt = EXCLUDED.attempt, started_at = EXCLUDED.started_at,
                   finished_at = EXCLUDED.finished_at, duration = EXCLUDED.duration
             WHERE r.status <> 'SUCCESS';
        END IF;
        job_id := e.id;
        status := next_status::text;
        RETURN NEXT;
    END LOOP;
END;
$$;
"""


def upgrade() -> None:
    op.execute(FETCH)
    op.execute(END)


def downgrade() -> None:
    op.execute("DROP FUNCTION tl_end_runs(jsonb)")
    op.execute(
        "DROP FUNCTION tl_fetch_jobs(character varying[], bigint, integer, boolean, "
        "double precision)"
    )
