"""Deleted jobs' counts are folded once per statement, not once per job

Migration 0013 folded the unfolded events and the lost runs of a deleted job into
``dashboard_job_totals`` from a ``BEFORE DELETE FOR EACH ROW`` trigger: about 15 rows of totals
(counts, duration sum and count, histogram buckets) updated by an ``INSERT ... ON CONFLICT DO
UPDATE`` per job. One ``DELETE FROM procrastinate_jobs`` of N jobs whose events no scrape had
folded (procrastinate's ``remove_old_jobs``, an operator) updated the same few dozen rows 15·N
times in one transaction, each update walking the chain of that row's earlier versions made by
the same transaction: quadratic. The delete of 20,001 succeeded jobs (3 events each, one task)
took 476 s, writing 340,017 versions of 17 rows. (Our retention deletes the events first, in
batches, so their jobs' delete has nothing left to fold.)

``tl_dashboard_jobs_deleted`` is an ``AFTER DELETE FOR EACH STATEMENT`` trigger: from the
statement's deleted jobs (its transition table) it folds the unfolded events of all of them and
their lost runs (per queue and task) by one ``INSERT ... ON CONFLICT DO UPDATE``, each row of
totals written once: the same delete takes 0.4 s, writing 17 rows. The totals are the row
trigger's:

- the jobs are gone when it runs, so the queue, task and run start of each event's job come from
  the transition table: ``tl_dashboard_deleted_job_totals(events, jobs)`` is 0013's
  ``tl_dashboard_event_totals`` joining the given jobs instead of ``procrastinate_jobs`` (made
  from its text, so that both count alike); the outcome's duration still comes from
  ``task_results``, which keeps no foreign key to the jobs;
- the events are still there: statement triggers of one table and event fire in the order of
  their names, so this one runs before 0015's ``tl_jobs_deleted`` deletes the events. That
  delete's own trigger (``tl_dashboard_events_deleted``) finds no job to join its events to,
  and adds nothing, as it did after the row trigger;
- the fold point is read under the lock of ``dashboard_metric_state`` (once per statement), as
  the row trigger read it, so that a fold in progress is waited for and its events not counted
  twice. A statement that deleted no job returns before taking it.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-03
"""

from __future__ import annotations

from types import ModuleType

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

#: 0013's ``tl_dashboard_event_totals``: its signature and its join to the events' jobs.
_EVENT_TOTALS = "CREATE FUNCTION tl_dashboard_event_totals(p_events procrastinate_events[])"
_DELETED_TOTALS = (
    "CREATE FUNCTION tl_dashboard_deleted_job_totals(p_events procrastinate_events[],\n"
    "                                                p_jobs procrastinate_jobs[])"
)
_JOBS_TABLE = "JOIN procrastinate_jobs AS j ON j.id = e.job_id"
_JOBS_GIVEN = "JOIN unnest(p_jobs) AS j ON j.id = e.job_id"
_ADD_TOTALS = "CREATE FUNCTION tl_dashboard_add_totals("

#: 0013's row trigger, from its function to the end of its triggers.
_ROW_TRIGGER = "CREATE FUNCTION tl_dashboard_job_deleted()"

_STATEMENT_TRIGGER = """
CREATE FUNCTION tl_dashboard_jobs_deleted() RETURNS trigger
  LANGUAGE plpgsql
AS $$
DECLARE
    folded bigint;
    events procrastinate_events[];
BEGIN
    IF NOT EXISTS (SELECT 1 FROM gone_jobs) THEN
        RETURN NULL;
    END IF;
    -- waits for a fold in progress, whose events this statement then no longer sees
    SELECT folded_upto INTO folded FROM dashboard_metric_state WHERE id = 1 FOR UPDATE;
    events := ARRAY(SELECT e FROM procrastinate_events AS e
                     WHERE e.job_id IN (SELECT g.id FROM gone_jobs AS g) AND e.id > folded);
    INSERT INTO dashboard_job_totals AS t (queue_name, task_name, metric, value)
    SELECT *
      FROM tl_dashboard_deleted_job_totals(events, ARRAY(
          -- the jobs of these events only: most jobs' events were folded by a scrape
          SELECT CAST(g AS procrastinate_jobs) FROM gone_jobs AS g
           WHERE g.id IN (SELECT e.job_id FROM unnest(events) AS e)))
    UNION ALL
    SELECT g.queue_name, g.task_name, 'lost_runs', sum(g.lost_runs)
      FROM gone_jobs AS g
     WHERE g.lost_runs > 0
     GROUP BY g.queue_name, g.task_name
    ON CONFLICT (queue_name, task_name, metric) DO UPDATE SET value = t.value + EXCLUDED.value;
    RETURN NULL;
END;
$$;

-- named to fire before tl_jobs_deleted (0015), which deletes the jobs' events
CREATE TRIGGER tl_dashboard_jobs_deleted
    AFTER DELETE ON procrastinate_jobs
    REFERENCING OLD TABLE AS gone_jobs
    FOR EACH STATEMENT EXECUTE FUNCTION tl_dashboard_jobs_deleted();
"""


def _migration(revision: str) -> ModuleType:
    """An earlier migration's module, as alembic loaded it for this run."""
    script = op.get_context().script
    assert script is not None, "run by alembic"
    found = script.get_revision(revision)
    assert found is not None
    return found.module


def _deleted_job_totals() -> str:
    """0013's ``tl_dashboard_event_totals``, the events' jobs given instead of read."""
    totals: str = _migration("0013").EVENT_TOTALS
    totals = totals.split(_ADD_TOTALS, 1)[0]
    assert totals.count(_EVENT_TOTALS) == 1 and totals.count(_JOBS_TABLE) == 1, "not 0013's"
    return totals.replace(_EVENT_TOTALS, _DELETED_TOTALS).replace(_JOBS_TABLE, _JOBS_GIVEN)


def _row_trigger() -> str:
    """0013's ``tl_dashboard_job_deleted``: its function and its row trigger."""
    triggers: str = _migration("0013").TRIGGERS
    assert triggers.count(_ROW_TRIGGER) == 1, "not 0013's"
    return _ROW_TRIGGER + triggers.split(_ROW_TRIGGER, 1)[1]


def upgrade() -> None:
    op.execute("DROP TRIGGER tl_dashboard_job_deleted ON procrastinate_jobs")
    op.execute("DROP FUNCTION tl_dashboard_job_deleted()")
    op.execute(_deleted_job_totals())
    op.execute(_STATEMENT_TRIGGER)


def downgrade() -> None:
    op.execute("DROP TRIGGER tl_dashboard_jobs_deleted ON procrastinate_jobs")
    op.execute("DROP FUNCTION tl_dashboard_jobs_deleted()")
    op.execute(
        "DROP FUNCTION tl_dashboard_deleted_job_totals(procrastinate_events[], procrastinate_jobs[])"
    )
    op.execute(_row_trigger())
