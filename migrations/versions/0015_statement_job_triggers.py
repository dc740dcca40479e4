"""procrastinate's job triggers once per statement instead of once per row, no events FK

procrastinate fires three PL/pgSQL row triggers for every job inserted (the ``deferred`` event,
the ``scheduled`` event, two NOTIFYs with distinct payloads) and one for every status change
(its event). A batch of 100 jobs paid 100 calls of each: 2.5 of the 3.2 ms the server spent on
it. These triggers do the same work once per statement, from the statement's transition tables:
the same event rows (same types, same ``at``, ``scheduled`` before ``deferred`` as the row
triggers' name order gave), and one ``job_inserted`` NOTIFY per queue per statement instead of
one per job (procrastinate's worker and ours only wake on it; its ``job_id`` is the lowest of
the statement's jobs in that queue). The abort-request triggers, rare, stay as they are.

The foreign key from ``procrastinate_events.job_id`` to the jobs goes too: each event row paid a
referential check (a key-share lock of the job and a lookup) although only these triggers write
events, of the job being written. Worse, that check's cached plan, made by a session while the
table was small, scans the whole table: a group of 100 went from 4 to 35 ms as 6,000 jobs
arrived (until an ANALYZE). Its ``ON DELETE CASCADE`` becomes a statement trigger deleting the
events of the deleted jobs.

``tl_fetch_jobs`` keeps 0013's pauses but leaves paused queues out of the queue list before it
scans, instead of testing every row against them: that test made the planner expect one ready
job, scan and sort the whole backlog, then take the first ones (4 ms per fetch with 5,000 jobs
waiting, growing with the backlog, against 0.5 ms down the priority index).

``tl_end_runs`` ends the successes that record no outcome (a task that wrote and returned
nothing: most ends of a busy queue) by one UPDATE, the status trigger firing once, then the
others one by one as 0007 did: a batch of 22 ends went from 6.9 to 3.2 ms.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-01
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

_INSERTED = """
CREATE FUNCTION tl_jobs_inserted() RETURNS trigger
  LANGUAGE plpgsql
AS $$
DECLARE
    inserted record;
    payload text;
BEGIN
    INSERT INTO procrastinate_events (job_id, type, at)
    SELECT id, 'scheduled'::procrastinate_job_event_type, scheduled_at
      FROM new_jobs
     WHERE status = 'todo' AND scheduled_at IS NOT NULL
     ORDER BY id;
    INSERT INTO procrastinate_events (job_id, type)
    SELECT id, 'deferred'::procrastinate_job_event_type
      FROM new_jobs
     WHERE status = 'todo'
     ORDER BY id;
    FOR inserted IN
        SELECT queue_name, min(id) AS id FROM new_jobs WHERE status = 'todo' GROUP BY queue_name
    LOOP
        payload := json_build_object('type', 'job_inserted', 'job_id', inserted.id)::text;
        PERFORM pg_notify('procrastinate_queue_v1#' || inserted.queue_name, payload);
        PERFORM pg_notify('procrastinate_any_queue_v1', payload);
    END LOOP;
    RETURN NULL;
END;
$$;
"""

_UPDATED = """
CREATE FUNCTION tl_jobs_updated() RETURNS trigger
  LANGUAGE plpgsql
AS $$
BEGIN
    -- a job waiting with a time (a retry put back) is scheduled, as the row trigger said, and
    -- before its status event (the row triggers fired in name order)
    INSERT INTO procrastinate_events (job_id, type, at)
    SELECT new_row.id, 'scheduled'::procrastinate_job_event_type, new_row.scheduled_at
      FROM new_jobs AS new_row
     WHERE new_row.status = 'todo' AND new_row.scheduled_at IS NOT NULL
     ORDER BY new_row.id;
    INSERT INTO procrastinate_events (job_id, type)
    SELECT changed.id, changed.event_type
      FROM (
        SELECT new_row.id,
               CASE
                 WHEN old_row.status = 'todo' AND new_row.status = 'doing'
                   THEN 'started'::procrastinate_job_event_type
                 WHEN old_row.status = 'doing' AND new_row.status = 'todo'
                   THEN 'deferred_for_retry'::procrastinate_job_event_type
                 WHEN old_row.status = 'doing' AND new_row.status = 'failed'
                   THEN 'failed'::procrastinate_job_event_type
                 WHEN old_row.status = 'doing' AND new_row.status = 'succeeded'
                   THEN 'succeeded'::procrastinate_job_event_type
                 WHEN old_row.status = 'todo'
                      AND new_row.status IN ('cancelled', 'failed', 'succeeded')
                   THEN 'cancelled'::procrastinate_job_event_type
                 WHEN old_row.status = 'doing' AND new_row.status = 'aborted'
                   THEN 'aborted'::procrastinate_job_event_type
                 WHEN old_row.status = 'failed' AND new_row.status = 'todo'
                   THEN 'retried'::procrastinate_job_event_type
               END AS event_type
          FROM new_jobs AS new_row
          JOIN old_jobs AS old_row ON old_row.id = new_row.id
         WHERE old_row.status IS DISTINCT FROM new_row.status
      ) AS changed
     WHERE changed.event_type IS NOT NULL
     ORDER BY changed.id;
    RETURN NULL;
END;
$$;
"""

_DELETED = """
CREATE FUNCTION tl_jobs_deleted() RETURNS trigger
  LANGUAGE plpgsql
AS $$
BEGIN
    DELETE FROM procrastinate_events AS e USING old_jobs AS gone WHERE e.job_id = gone.id;
    RETURN NULL;
END;
$$;
"""


def _migration(name: str) -> ModuleType:
    path = Path(__file__).with_name(name)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _fetch_skipping_paused_queues() -> str:
    """0007's ``tl_fetch_jobs``, its queue list first stripped of the paused queues."""
    fetch: str = _migration("0007_batched_fetch_and_end.py").FETCH
    head, body = fetch.split("AS $$", 1)
    query = body.rsplit("$$;", 1)[0].strip()
    assert head.count("LANGUAGE sql") == 1 and query.count("p_queues") == 2, "not 0007's"
    head = head.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION")
    return (
        head.replace("LANGUAGE sql", "LANGUAGE plpgsql")
        + "AS $$\nDECLARE\n    active varchar[];\nBEGIN\n"
        + "    active := ARRAY(SELECT q FROM unnest(p_queues) AS q WHERE NOT EXISTS (\n"
        + "        SELECT 1 FROM dashboard_queue_pauses AS p WHERE p.queue_name = q));\n"
        + "    IF cardinality(active) = 0 THEN\n        RETURN;\n    END IF;\n"
        + "    RETURN QUERY\n"
        + query.replace("p_queues", "active")
        + ";\nEND;\n$$;\n"
    )


_ROW_TRIGGERS = (
    "procrastinate_jobs_notify_queue_job_inserted_v1",
    "procrastinate_trigger_status_events_insert_v1",
    "procrastinate_trigger_scheduled_events_v1",
    "procrastinate_trigger_status_events_update_v1",
)


def _end_runs_with_successes_at_once() -> str:
    """0007's ``tl_end_runs``, its successes with no outcome row ended by one statement first."""
    end: str = _migration("0007_batched_fetch_and_end.py").END
    loop = "    FOR e IN\n        SELECT *\n          FROM jsonb_to_recordset(p_ends) AS x("
    assert end.count(loop) == 1, "not 0007's"
    declared = "    message text;\nBEGIN\n"
    assert end.count(declared) == 1, "not 0007's"
    rest = loop.replace("    FOR e IN\n        SELECT *\n", "    FOR e IN\n        SELECT x.*\n")
    end = end.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION")
    end = end.replace(
        declared,
        "    message text;\n    done bigint[];\n    succeeded bigint[];\nBEGIN\n" + _SUCCESSES,
    )
    return end.replace(loop, rest).replace(
        "              retry_at timestamptz, mask jsonb)\n    LOOP",
        "              retry_at timestamptz, mask jsonb)\n"
        "         WHERE x.id <> ALL(done)\n    LOOP",
    )


#: Successes that record no outcome (a task that wrote nothing and returned nothing): most ends
#: of a busy queue, now one UPDATE (one firing of the status trigger) instead of one per job.
_SUCCESSES = """\
    WITH ends AS (
        SELECT x.*
          FROM jsonb_to_recordset(p_ends) AS x(
              id bigint, run integer, action text, result jsonb, error text, record boolean,
              retry_at timestamptz, mask jsonb)
         WHERE x.action = 'succeeded' AND NOT coalesce(x.record, false)
    ), ended AS (
        UPDATE procrastinate_jobs AS p
           SET status = 'succeeded',
               attempts = p.attempts + 1,
               abort_requested = false,
               args = p.args || coalesce(ends.mask, '{}')
          FROM ends
         WHERE p.id = ends.id AND p.runs = ends.run AND p.status = 'doing'
        RETURNING p.id, p.lock, p.queue_name
    ), woken AS (
        -- a job waiting for a released lock may start now, in every process
        SELECT pg_notify('procrastinate_queue_v1#' || queue_name,
                         json_build_object('type', 'job_inserted', 'job_id', min(id))::text)
          FROM ended
         WHERE lock IS NOT NULL
         GROUP BY queue_name
    )
    SELECT coalesce(array_agg(ends.id), '{}'),
           coalesce(array_agg(ended.id) FILTER (WHERE ended.id IS NOT NULL), '{}')
      INTO done, succeeded
      FROM ends
      LEFT JOIN ended ON ended.id = ends.id
     WHERE (SELECT count(*) FROM woken) >= 0;
    RETURN QUERY
        SELECT ended_id, CASE WHEN ended_id = ANY(succeeded) THEN 'succeeded' ELSE 'fenced' END
          FROM unnest(done) AS ended_id;
"""


def upgrade() -> None:
    op.execute(_end_runs_with_successes_at_once())
    op.execute("DROP FUNCTION tl_fetch_jobs(varchar[], bigint, integer, boolean, double precision)")
    op.execute(_fetch_skipping_paused_queues())
    for trigger in _ROW_TRIGGERS:
        op.execute(f"DROP TRIGGER {trigger} ON procrastinate_jobs")
    op.execute(_INSERTED)
    op.execute(_UPDATED)
    op.execute(_DELETED)
    op.execute("ALTER TABLE procrastinate_events DROP CONSTRAINT procrastinate_events_job_id_fkey")
    op.execute(
        "CREATE TRIGGER tl_jobs_deleted AFTER DELETE ON procrastinate_jobs"
        " REFERENCING OLD TABLE AS old_jobs"
        " FOR EACH STATEMENT EXECUTE FUNCTION tl_jobs_deleted()"
    )
    op.execute(
        "CREATE TRIGGER tl_jobs_inserted AFTER INSERT ON procrastinate_jobs"
        " REFERENCING NEW TABLE AS new_jobs"
        " FOR EACH STATEMENT EXECUTE FUNCTION tl_jobs_inserted()"
    )
    op.execute(
        "CREATE TRIGGER tl_jobs_updated AFTER UPDATE ON procrastinate_jobs"
        " REFERENCING OLD TABLE AS old_jobs NEW TABLE AS new_jobs"
        " FOR EACH STATEMENT EXECUTE FUNCTION tl_jobs_updated()"
    )


def downgrade() -> None:
    op.execute(
        _migration("0007_batched_fetch_and_end.py").END.replace(
            "CREATE FUNCTION", "CREATE OR REPLACE FUNCTION"
        )
    )
    op.execute("DROP FUNCTION tl_fetch_jobs(varchar[], bigint, integer, boolean, double precision)")
    op.execute(_migration("0013_dashboard.py")._fetch_function(paused=True))
    op.execute("DROP TRIGGER tl_jobs_deleted ON procrastinate_jobs")
    op.execute("DROP FUNCTION tl_jobs_deleted()")
    op.execute(
        "ALTER TABLE procrastinate_events ADD CONSTRAINT procrastinate_events_job_id_fkey"
        " FOREIGN KEY (job_id) REFERENCES procrastinate_jobs(id) ON DELETE CASCADE"
    )
    op.execute("DROP TRIGGER tl_jobs_updated ON procrastinate_jobs")
    op.execute("DROP TRIGGER tl_jobs_inserted ON procrastinate_jobs")
    op.execute("DROP FUNCTION tl_jobs_updated()")
    op.execute("DROP FUNCTION tl_jobs_inserted()")
    op.execute(
        "CREATE TRIGGER procrastinate_jobs_notify_queue_job_inserted_v1"
        " AFTER INSERT ON procrastinate_jobs"
        " FOR EACH ROW WHEN ((new.status = 'todo'::procrastinate_job_status))"
        " EXECUTE PROCEDURE procrastinate_notify_queue_job_inserted_v1()"
    )
    op.execute(
        "CREATE TRIGGER procrastinate_trigger_status_events_update_v1"
        " AFTER UPDATE OF status ON procrastinate_jobs"
        " FOR EACH ROW EXECUTE PROCEDURE procrastinate_trigger_function_status_events_update_v1()"
    )
    op.execute(
        "CREATE TRIGGER procrastinate_trigger_status_events_insert_v1"
        " AFTER INSERT ON procrastinate_jobs"
        " FOR EACH ROW WHEN ((new.status = 'todo'::procrastinate_job_status))"
        " EXECUTE PROCEDURE procrastinate_trigger_function_status_events_insert_v1()"
    )
    op.execute(
        "CREATE TRIGGER procrastinate_trigger_scheduled_events_v1"
        " AFTER UPDATE OR INSERT ON procrastinate_jobs"
        " FOR EACH ROW WHEN ((new.scheduled_at IS NOT NULL"
        " AND new.status = 'todo'::procrastinate_job_status))"
        " EXECUTE PROCEDURE procrastinate_trigger_function_scheduled_events_v1()"
    )
