"""The fetch runs a plan the server keeps; ends find their job by its primary key

``tl_fetch_jobs`` was planned again on every call: its ``LIMIT`` is a parameter, so the plan the
server could keep (a generic plan) assumed a tenth of the backlog would be taken and sorted the
whole backlog, and the server chose to plan each call for its own limit instead: 1.3 of the
2.2 ms a fetch of 7 jobs cost went to planning. Now:

- the function keeps one plan per session (``plan_cache_mode = force_generic_plan``), with sorts
  ruled out where an index gives the order (``enable_sort = off``: a sort is then chosen only
  where nothing else can order, the handful of rows returned);
- a fetch of one queue (what every fetch loop does) walks a new index, ``tl_jobs_ready_idx``
  (the queue, then procrastinate's order, of ready jobs that were never lost), from its head,
  whatever the other queues hold; a fetch of several queues (``run_until_idle``) walks
  procrastinate's priority index as before;
- the jobs taken are updated by primary key (``id = ANY(...)``) instead of a join the generic
  plan made into a scan of the whole table;
- the check that no job of the same lock runs or comes first is skipped for a job with no lock,
  and is one lookup in a new index of the locks of waiting and running jobs,
  ``tl_jobs_active_lock_idx``, for one with a lock (procrastinate's indexes have the lock second,
  or hold only running jobs: a generic plan read the whole table for it).

The same procrastinate order, locks, suspects-alone rule and pauses as 0015's function.

The compare-and-set of a run's end (``tl_succeed_run``, ``tl_end_runs``) named its job by id and
``status = 'doing'``; the planner matched the second to procrastinate's partial index of doing
jobs by lock (``procrastinate_jobs_lock_idx_v1``, which holds every doing job, locked or not) and
read that whole index instead of the primary key: 0.47 ms per end with 2,000 jobs running, 0.16
by primary key. The status is now compared as text, which no partial index predicate matches.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-02
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

#: The run's compare-and-set, as 0007 (``tl_end_runs``' loop), 0015 (its fast path) and 0016
#: (``tl_succeed_run``) wrote it, and as it is now: ``status::text`` so that no partial index
#: of doing jobs is chosen over the primary key.
_BY_STATUS = "AND p.status = 'doing'"
_BY_KEY = "AND p.status::text = 'doing'"

_INDEXES = {
    # ready jobs never lost, per queue in procrastinate's order: one queue's fetch reads its head
    "tl_jobs_ready_idx": "(queue_name, priority DESC, id) WHERE status = 'todo' AND lost_runs = 0",
    # the locks of waiting and running jobs: the lock check of a candidate is one lookup
    # (procrastinate's indexes have the lock second, or only for doing jobs)
    "tl_jobs_active_lock_idx": "(lock) WHERE status IN ('todo', 'doing') AND lock IS NOT NULL",
}


#: 0007's condition that no other job of the same lock runs or comes first, written so that a
#: job with no lock skips it: a join (which a generic plan may make a scan of the whole table for
#: each candidate) became a subquery run only for locked jobs, down the index of locks.
_LOCK_FREE = """(jobs.lock IS NULL OR NOT EXISTS (
           SELECT 1
             FROM procrastinate_jobs AS other
            WHERE other.lock = jobs.lock
              AND (other.status = 'doing'
                   OR (other.status = 'todo'
                       AND (other.priority > jobs.priority
                            OR (other.priority = jobs.priority AND other.id < jobs.id))))))"""


def _fetch() -> str:
    suspect = f"""
    SELECT jobs.id
      FROM procrastinate_jobs AS jobs
     WHERE jobs.status = 'todo'
       AND jobs.lost_runs > 0
       AND jobs.queue_name = ANY(active)
       AND (jobs.scheduled_at IS NULL OR jobs.scheduled_at <= now())
       AND (p_idle OR jobs.scheduled_at < now() - make_interval(secs => p_suspect_wait))
       AND {_LOCK_FREE}
     ORDER BY jobs.priority DESC, jobs.id
     LIMIT 1
       FOR UPDATE OF jobs SKIP LOCKED"""

    def query(queue_condition: str) -> str:
        return f"""
        WITH suspect AS ({suspect}
        ), ready AS (
            SELECT jobs.id
              FROM procrastinate_jobs AS jobs
             WHERE NOT EXISTS (SELECT 1 FROM suspect)
               AND jobs.status = 'todo'
               AND jobs.lost_runs = 0
               AND {queue_condition}
               AND (jobs.scheduled_at IS NULL OR jobs.scheduled_at <= now())
               AND {_LOCK_FREE}
             ORDER BY jobs.priority DESC, jobs.id
             LIMIT p_limit
               FOR UPDATE OF jobs SKIP LOCKED
        ), started AS (
            UPDATE procrastinate_jobs AS j
               SET status = 'doing',
                   worker_id = p_worker_id,
                   runs = j.runs + 1,
                   run_started_at = now(),
                   run_alone = j.id IN (SELECT id FROM suspect)
             WHERE j.id = ANY(ARRAY(SELECT id FROM suspect UNION ALL SELECT id FROM ready))
            RETURNING j.*
        )
        SELECT * FROM started ORDER BY priority DESC, id"""

    return f"""
CREATE OR REPLACE FUNCTION tl_fetch_jobs(
    p_queues character varying[],
    p_worker_id bigint,
    p_limit integer,
    p_idle boolean,
    p_suspect_wait double precision
) RETURNS SETOF procrastinate_jobs
  LANGUAGE plpgsql
  SET plan_cache_mode = force_generic_plan
  SET enable_sort = off
AS $$
DECLARE
    active varchar[];
BEGIN
    active := ARRAY(SELECT q FROM unnest(p_queues) AS q WHERE NOT EXISTS (
        SELECT 1 FROM dashboard_queue_pauses AS p WHERE p.queue_name = q));
    IF cardinality(active) = 0 THEN
        RETURN;
    ELSIF cardinality(active) = 1 THEN
        -- one queue: down tl_jobs_ready_idx, in order from its head
        RETURN QUERY {query("jobs.queue_name = active[1]")};
    ELSE
        RETURN QUERY {query("jobs.queue_name = ANY(active)")};
    END IF;
END;
$$;
"""


def _succeed(*, by_key: bool) -> str:
    text: str = _migration("0016_end_run_with_commit.py")._SUCCEED
    text = text.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION")
    return _by_key(text) if by_key else text


def _end_runs(*, by_key: bool) -> str:
    text: str = _migration("0015_statement_job_triggers.py")._end_runs_with_successes_at_once()
    return _by_key(text) if by_key else text


def _by_key(function: str) -> str:
    assert function.count(_BY_STATUS) in (1, 2), "not the expected function"
    return function.replace(_BY_STATUS, _BY_KEY)


def _migration(name: str) -> ModuleType:
    path = Path(__file__).with_name(name)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def upgrade() -> None:
    for name, definition in _INDEXES.items():
        op.execute(f"CREATE INDEX {name} ON procrastinate_jobs {definition}")
    op.execute(_fetch())
    op.execute(_succeed(by_key=True))
    op.execute(_end_runs(by_key=True))


def downgrade() -> None:
    op.execute(_end_runs(by_key=False))
    op.execute(_succeed(by_key=False))
    op.execute("DROP FUNCTION tl_fetch_jobs(varchar[], bigint, integer, boolean, double precision)")
    op.execute(_migration("0015_statement_job_triggers.py")._fetch_skipping_paused_queues())
    for name in _INDEXES:
        op.execute(f"DROP INDEX {name}")
