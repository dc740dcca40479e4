"""A task's own transaction ends its run and commits in one round trip; fewer statements per end

A task that wrote ends its run inside its own transaction (its writes and the job's end commit
together). That took two round trips after the task's last statement: ``tl_end_runs``, whose
answer said whether the run was fenced (then the worker rolled back), and ``COMMIT``; and the
server ran nine statements for it (two PL/pgSQL functions, the JSON unpacked twice, the status
trigger's two inserts). ``tl_succeed_run`` ends one run as succeeded and *raises* (SQLSTATE
``TLF01``) when the run was fenced, so the worker sends it and ``COMMIT`` in one message: on a
fence the error aborts the transaction before the ``COMMIT`` is read, and the task's writes roll
back with it. A success that records no outcome row (the task returned nothing) is one UPDATE,
as ``tl_end_runs``' own fast path (0015) does it; one that records goes through ``tl_end_runs``.

The status trigger writes its ``scheduled`` and status events by one INSERT instead of two (one
statement fewer for every fetch and every end), in the row triggers' order: per job, the
``scheduled`` event first.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-01
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

#: The SQLSTATE raised when a run was fenced (a class of its own: no PostgreSQL error uses "TL").
FENCED_SQLSTATE = "TLF01"

_SUCCEED = f"""
CREATE FUNCTION tl_succeed_run(
    p_id bigint, p_run integer, p_result jsonb, p_record boolean, p_mask jsonb
) RETURNS void
  LANGUAGE plpgsql
AS $$
DECLARE
    ended record;
    outcome text;
BEGIN
    IF p_record THEN
        SELECT e.status INTO outcome
          FROM tl_end_runs(jsonb_build_array(jsonb_build_object(
                   'id', p_id, 'run', p_run, 'action', 'succeeded', 'result', p_result,
                   'record', true, 'mask', p_mask))) AS e;
    ELSE
        -- 0015's fast path of tl_end_runs, for one run
        UPDATE procrastinate_jobs AS p
           SET status = 'succeeded',
               attempts = p.attempts + 1,
               abort_requested = false,
               args = p.args || coalesce(p_mask, '{{}}')
         WHERE p.id = p_id AND p.runs = p_run AND p.status = 'doing'
        RETURNING p.lock, p.queue_name INTO ended;
        outcome := CASE WHEN FOUND THEN 'succeeded' ELSE 'fenced' END;
        IF ended.lock IS NOT NULL THEN
            -- a job waiting for this lock may start now, in every process
            PERFORM pg_notify('procrastinate_queue_v1#' || ended.queue_name,
                              json_build_object('type', 'job_inserted', 'job_id', p_id)::text);
        END IF;
    END IF;
    IF outcome = 'fenced' THEN
        RAISE EXCEPTION 'job % no longer belongs to run %', p_id, p_run
              USING ERRCODE = '{FENCED_SQLSTATE}',
                    HINT = 'the job was taken away from this run (its worker was presumed dead)'
                           ' or has ended already: the transaction must roll back';
    END IF;
END;
$$;
"""


def _status_events_by_one_insert() -> str:
    """0015's ``tl_jobs_updated``, its two INSERTs made one, ordered per job."""
    updated: str = _migration("0015_statement_job_triggers.py")._UPDATED
    opening = "      FROM (\n"
    closing = "      ) AS changed\n     WHERE changed.event_type IS NOT NULL\n"
    assert updated.count(opening) == 1 and updated.count(closing) == 1, "not 0015's"
    changed = updated.split(opening, 1)[1].split(closing, 1)[0]  # the status transitions
    body = (
        "    -- per job, as the row triggers did (they fired in name order): a job waiting with\n"
        "    -- a time (a retry put back) is ``scheduled`` first, then its status event\n"
        "    INSERT INTO procrastinate_events (job_id, type, at)\n"
        "    SELECT event.id, event.type, coalesce(event.at, now())\n"
        "      FROM (\n"
        "        SELECT new_row.id, 0 AS ord, 'scheduled'::procrastinate_job_event_type AS type,\n"
        "               new_row.scheduled_at AS at\n"
        "          FROM new_jobs AS new_row\n"
        "         WHERE new_row.status = 'todo' AND new_row.scheduled_at IS NOT NULL\n"
        "        UNION ALL\n"
        "        SELECT changed.id, 1, changed.event_type, NULL\n"
        "          FROM (\n" + changed + "          ) AS changed\n"
        "         WHERE changed.event_type IS NOT NULL\n"
        "      ) AS event\n"
        "     ORDER BY event.id, event.ord;\n"
    )
    head, rest = updated.split("BEGIN\n", 1)
    tail = "    RETURN NULL;\n" + rest.split("    RETURN NULL;\n", 1)[1]
    return head.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION") + "BEGIN\n" + body + tail


def _migration(name: str) -> ModuleType:
    path = Path(__file__).with_name(name)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def upgrade() -> None:
    op.execute(_SUCCEED)
    op.execute(_status_events_by_one_insert())


def downgrade() -> None:
    op.execute("DROP FUNCTION tl_succeed_run(bigint, integer, jsonb, boolean, jsonb)")
    updated: str = _migration("0015_statement_job_triggers.py")._UPDATED
    op.execute(updated.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION"))
