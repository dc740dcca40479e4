"""dashboard: paused queues, the action log, monotonic metric totals, indexes of the jobs page

- ``dashboard_queue_pauses``: ``tl_fetch_jobs`` (migration 0007) is redefined, identical but for
  one condition in each of its two scans, to take no job of a paused queue. No runner code
  changes: a pause takes effect at the next fetch of every worker.
- ``dashboard_actions``: who did what through the dashboard, and what came of it.
- ``dashboard_metric_state`` and ``dashboard_job_totals``: the Prometheus counters of
  ``/metrics`` are ``totals + what the events above the fold point say``. A scrape folds
  events into the totals once no transaction that could still add an event below the fold point
  is running (see ``worker.dashboard.metrics``). Retention deletes events and jobs: the triggers
  below first fold whatever was not folded yet, so a counter never goes down.
- ``tl_dashboard_event_id_at`` / ``tl_dashboard_job_id_at``: the first event (job) at or after
  a time, by a binary search over the events' ids, which grow with time (up to the length of a
  transaction: ``at`` is its start): the jobs page and the overview's last hour read id ranges,
  with no index on a time column to maintain on the hot path.
- Indexes: jobs that ended badly (``failed``, ``cancelled``, ``aborted``) by id, for the jobs
  page's status filter on a large table; jobs with lost runs, for the lost-run counter; jobs by
  task and id, for the task filter.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

#: Upper bounds (seconds) of the job duration histogram's buckets.
DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)

#: The queue condition of both scans of ``tl_fetch_jobs`` (migration 0007).
_QUEUE_CONDITION = "AND jobs.queue_name = ANY(p_queues)\n"
_NOT_PAUSED = (
    "AND jobs.queue_name = ANY(p_queues)\n"
    "       AND jobs.queue_name <> ALL(ARRAY(SELECT queue_name FROM dashboard_queue_pauses))\n"
)


def _migration_0007() -> ModuleType:
    path = Path(__file__).with_name("0007_batched_fetch_and_end.py")
    spec = importlib.util.spec_from_file_location("migration_0007", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _fetch_function(*, paused: bool) -> str:
    text: str = _migration_0007().FETCH.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION")
    if paused:
        assert text.count(_QUEUE_CONDITION) == 2, "tl_fetch_jobs is not 0007's"
        text = text.replace(_QUEUE_CONDITION, _NOT_PAUSED)
    return text


_NEGATED = (
    f"CAST(ARRAY[{', '.join(str(-b) for b in reversed(DURATION_BUCKETS))}] AS double precision[])"
)
_BOUNDS = f"CAST(ARRAY[{', '.join(str(b) for b in DURATION_BUCKETS)}] AS double precision[])"

EVENT_TOTALS = f"""
CREATE FUNCTION tl_dashboard_event_totals(p_events procrastinate_events[])
RETURNS TABLE (queue_name character varying, task_name character varying, metric text,
               value double precision)
  LANGUAGE sql STABLE
AS $$
WITH ended AS (
    SELECT j.queue_name, j.task_name,
           CASE e.type WHEN 'deferred_for_retry' THEN 'retried' ELSE CAST(e.type AS text) END
               AS kind,
           CASE WHEN e.type NOT IN ('succeeded', 'failed', 'aborted') THEN NULL
                WHEN r.status = CASE e.type WHEN 'succeeded' THEN 'SUCCESS' ELSE 'FAILURE' END
                    THEN r.duration
                WHEN e.at >= j.run_started_at THEN extract(epoch FROM e.at - j.run_started_at)
                END AS seconds
      FROM unnest(p_events) AS e
      JOIN procrastinate_jobs AS j ON j.id = e.job_id
      LEFT JOIN task_results AS r ON r.job_id = e.job_id
     WHERE e.type IN ('succeeded', 'failed', 'aborted', 'deferred_for_retry', 'retried')
), bucketed AS (
    -- first: the position of the first bucket whose bound is at or above the duration
    -- (width_bucket over the negated bounds counts the bounds >= the duration)
    SELECT queue_name, task_name, kind, count(*) AS n, sum(seconds) AS seconds,
           {len(DURATION_BUCKETS) + 1} - width_bucket(-seconds, {_NEGATED}) AS first
      FROM ended
     GROUP BY 1, 2, 3, 6
)
SELECT queue_name, task_name, kind, CAST(sum(n) AS double precision)
  FROM bucketed GROUP BY 1, 2, 3
UNION ALL
SELECT queue_name, task_name, 'duration_count', CAST(sum(n) AS double precision)
  FROM bucketed WHERE first IS NOT NULL GROUP BY 1, 2
UNION ALL
SELECT queue_name, task_name, 'duration_sum', sum(seconds)
  FROM bucketed WHERE first IS NOT NULL GROUP BY 1, 2
UNION ALL
SELECT b.queue_name, b.task_name, 'le:' || CAST(bound AS text), CAST(sum(b.n) AS double precision)
  FROM bucketed AS b
  JOIN unnest({_BOUNDS}) WITH ORDINALITY AS u(bound, position) ON u.position >= b.first
 GROUP BY 1, 2, 3
$$;

CREATE FUNCTION tl_dashboard_add_totals(p_events procrastinate_events[])
RETURNS void
  LANGUAGE sql
AS $$
INSERT INTO dashboard_job_totals AS t (queue_name, task_name, metric, value)
SELECT * FROM tl_dashboard_event_totals(p_events)
ON CONFLICT (queue_name, task_name, metric) DO UPDATE SET value = t.value + EXCLUDED.value
$$;
"""

TRIGGERS = """
CREATE FUNCTION tl_dashboard_events_deleted() RETURNS trigger
  LANGUAGE plpgsql
AS $$
DECLARE
    folded bigint;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM gone) THEN
        RETURN NULL;
    END IF;
    -- waits for a fold in progress, whose events this statement then no longer sees
    SELECT folded_upto INTO folded FROM dashboard_metric_state WHERE id = 1 FOR UPDATE;
    PERFORM tl_dashboard_add_totals(ARRAY(
        SELECT ROW(g.id, g.job_id, g.type, g.at)::procrastinate_events
          FROM gone AS g WHERE g.id > folded));
    RETURN NULL;
END;
$$;

CREATE TRIGGER tl_dashboard_events_deleted
    AFTER DELETE ON procrastinate_events
    REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT EXECUTE FUNCTION tl_dashboard_events_deleted();

-- A job deleted with its events (ON DELETE CASCADE): its events are folded here, while the job
-- is still visible; the cascade's statement then finds no job to join them to.
CREATE FUNCTION tl_dashboard_job_deleted() RETURNS trigger
  LANGUAGE plpgsql
AS $$
DECLARE
    folded bigint;
BEGIN
    SELECT folded_upto INTO folded FROM dashboard_metric_state WHERE id = 1 FOR UPDATE;
    PERFORM tl_dashboard_add_totals(ARRAY(
        SELECT e FROM procrastinate_events AS e WHERE e.job_id = OLD.id AND e.id > folded));
    IF OLD.lost_runs > 0 THEN
        INSERT INTO dashboard_job_totals AS t (queue_name, task_name, metric, value)
        VALUES (OLD.queue_name, OLD.task_name, 'lost_runs', OLD.lost_runs)
        ON CONFLICT (queue_name, task_name, metric) DO UPDATE SET value = t.value + EXCLUDED.value;
    END IF;
    RETURN OLD;
END;
$$;

CREATE TRIGGER tl_dashboard_job_deleted
    BEFORE DELETE ON procrastinate_jobs
    FOR EACH ROW EXECUTE FUNCTION tl_dashboard_job_deleted();
"""

JOB_ID_AT = """
CREATE FUNCTION tl_dashboard_event_id_at(p_at timestamptz) RETURNS bigint
  LANGUAGE plpgsql STABLE
AS $$
DECLARE
    lo bigint;
    hi bigint;
    mid bigint;
    probe_id bigint;
    probe_at timestamptz;
BEGIN
    -- the smallest event id from which every event is at or after p_at (ids grow with time)
    SELECT min(id), max(id) + 1 INTO lo, hi FROM procrastinate_events;
    IF lo IS NULL THEN
        RETURN (SELECT last_value + 1 FROM procrastinate_events_id_seq);
    END IF;
    WHILE lo < hi LOOP
        mid := lo + (hi - lo) / 2;
        SELECT id, at INTO probe_id, probe_at
          FROM procrastinate_events WHERE id >= mid ORDER BY id LIMIT 1;
        IF probe_id IS NULL OR probe_at >= p_at THEN
            hi := mid;
        ELSE
            lo := probe_id + 1;
        END IF;
    END LOOP;
    RETURN lo;
END;
$$;

CREATE FUNCTION tl_dashboard_job_id_at(p_at timestamptz) RETURNS bigint
  LANGUAGE sql STABLE
AS $$
SELECT coalesce(
    (SELECT job_id FROM procrastinate_events
      WHERE id >= tl_dashboard_event_id_at(p_at) AND type = 'deferred'
      ORDER BY id LIMIT 1),
    (SELECT coalesce(max(id), 0) + 1 FROM procrastinate_jobs))
$$;
"""

INDEXES = (
    (
        "procrastinate_jobs_ended_badly_idx",
        "(status, id) WHERE status IN ('failed', 'cancelled', 'aborted')",
    ),
    ("procrastinate_jobs_lost_runs_idx", "(queue_name, task_name) WHERE lost_runs > 0"),
    ("procrastinate_jobs_task_name_idx", "(task_name, id)"),
)


def upgrade() -> None:
    op.create_table(
        "dashboard_queue_pauses",
        sa.Column("queue_name", sa.String(length=128), nullable=False),
        sa.Column("paused_by", sa.String(length=128), nullable=False),
        sa.Column(
            "paused_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.PrimaryKeyConstraint("queue_name", name=op.f("pk_dashboard_queue_pauses")),
    )
    op.create_table(
        "dashboard_actions",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column(
            "at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("remote_addr", sa.String(length=64), nullable=True),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("target", sa.String(length=256), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dashboard_actions")),
    )
    op.create_table(
        "dashboard_metric_state",
        sa.Column("id", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("folded_upto", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("candidate_upto", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column(
            "candidate_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("candidate_xmax", sa.BigInteger(), nullable=True),
        sa.CheckConstraint("id = 1", name=op.f("ck_dashboard_metric_state_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dashboard_metric_state")),
    )
    # counters count from now on: events already there are taken as folded
    op.execute(
        "INSERT INTO dashboard_metric_state (id, folded_upto, candidate_upto) "
        "SELECT 1, coalesce(max(id), 0), coalesce(max(id), 0) FROM procrastinate_events"
    )
    op.create_table(
        "dashboard_job_totals",
        sa.Column("queue_name", sa.String(length=128), nullable=False),
        sa.Column("task_name", sa.String(length=128), nullable=False),
        sa.Column("metric", sa.String(length=32), nullable=False),
        sa.Column("value", sa.Float(), server_default=sa.text("0"), nullable=False),
        sa.PrimaryKeyConstraint(
            "queue_name", "task_name", "metric", name=op.f("pk_dashboard_job_totals")
        ),
    )
    op.execute(_fetch_function(paused=True))
    op.execute(EVENT_TOTALS)
    op.execute(TRIGGERS)
    op.execute(JOB_ID_AT)
    for name, definition in INDEXES:
        op.execute(f"CREATE INDEX {name} ON procrastinate_jobs {definition}")


def downgrade() -> None:
    for name, _ in INDEXES:
        op.execute(f"DROP INDEX {name}")
    op.execute("DROP FUNCTION tl_dashboard_job_id_at(timestamptz)")
    op.execute("DROP FUNCTION tl_dashboard_event_id_at(timestamptz)")
    op.execute("DROP TRIGGER tl_dashboard_job_deleted ON procrastinate_jobs")
    op.execute("DROP TRIGGER tl_dashboard_events_deleted ON procrastinate_events")
    op.execute("DROP FUNCTION tl_dashboard_job_deleted()")
    op.execute("DROP FUNCTION tl_dashboard_events_deleted()")
    op.execute("DROP FUNCTION tl_dashboard_add_totals(procrastinate_events[])")
    op.execute("DROP FUNCTION tl_dashboard_event_totals(procrastinate_events[])")
    op.execute(_fetch_function(paused=False))
    op.drop_table("dashboard_job_totals")
    op.drop_table("dashboard_metric_state")
    op.drop_table("dashboard_actions")
    op.drop_table("dashboard_queue_pauses")
