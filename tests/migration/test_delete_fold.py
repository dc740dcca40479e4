"""Migration 0018: jobs deleted by one statement are folded into the totals once per statement,
to the totals 0013's row trigger gave."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from alembic import command

from worker import schema

START = "timestamptz '2030-01-01 00:00:00+00'"

#: (queue, task, statuses after todo, seconds from the last run's start to its end events,
#: outcome recorded by the task (status, duration), lost runs)
JOBS: list[tuple[str, str, list[str], float, tuple[str, float] | None, int]] = [
    ("a", "t1", ["doing", "succeeded"], 0.25, ("SUCCESS", 2.0), 0),  # the task's duration
    ("a", "t1", ["doing", "succeeded"], 0.5, None, 0),  # from the events
    ("a", "t1", ["doing", "succeeded"], 3.0, ("FAILURE", 7.0), 0),  # not its outcome: events
    ("a", "t2", ["doing", "failed"], 40.0, ("FAILURE", 1.5), 1),
    ("a", "t2", ["doing", "todo", "doing", "succeeded"], 100.0, None, 2),  # deferred_for_retry
    ("b", "t1", ["doing", "failed", "todo", "doing", "succeeded"], 0.03125, ("SUCCESS", 4000.0),
     0),  # retried; above every bucket
    ("b", "t2", ["doing", "aborted"], 8.0, None, 0),
    ("b", "t2", ["doing", "failed"], -1.0, None, 1),  # ended before its run started: no duration
    ("b", "t1", ["cancelled"], 0.0, None, 0),
    ("b", "t2", [], 0.0, None, 3),  # waiting, lost runs only
]  # fmt: skip


def _make_job(connection: psycopg.Connection[Any], job: tuple[Any, ...]) -> None:
    queue, task, statuses, seconds, outcome, lost_runs = job
    job_id = connection.execute(
        "INSERT INTO procrastinate_jobs (queue_name, task_name, args, lost_runs)"
        " VALUES (%s, %s, '{}', %s) RETURNING id",
        (queue, task, lost_runs),
    ).fetchone()[0]  # type: ignore[index]
    for status in statuses:
        if status == "aborted":
            connection.execute(
                "UPDATE procrastinate_jobs SET abort_requested = true WHERE id = %s", (job_id,)
            )
        connection.execute(
            f"UPDATE procrastinate_jobs SET status = %s, run_started_at = {START} WHERE id = %s",
            (status, job_id),
        )
    connection.execute(
        f"UPDATE procrastinate_events SET at = {START} + make_interval(secs => %s)"
        " WHERE job_id = %s AND type IN ('succeeded', 'failed', 'aborted')",
        (seconds, job_id),
    )
    if outcome is not None:
        connection.execute(
            "INSERT INTO task_results (job_id, task_name, queue_name, status, attempt,"
            f" started_at, finished_at, duration) VALUES (%s, %s, %s, %s, 1, {START}, {START}, %s)",
            (job_id, task, queue, *outcome),
        )


def _make_jobs(connection: psycopg.Connection[Any], times: int = 1) -> None:
    """``JOBS`` ``times`` over, and totals that were there before (one row the deletes add to)."""
    for _ in range(times):
        for job in JOBS:
            _make_job(connection, job)
    connection.execute(
        "INSERT INTO dashboard_job_totals (queue_name, task_name, metric, value)"
        " VALUES ('a', 't1', 'succeeded', 10), ('c', 't3', 'failed', 1)"
    )
    connection.commit()


def _fold_upto(connection: psycopg.Connection[Any], where: str) -> None:
    """Take the events up to the middle (or none) as folded."""
    upto = "(SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY id) FROM procrastinate_events)"
    connection.execute(
        f"UPDATE dashboard_metric_state SET folded_upto = {upto if where == 'middle' else 0}"
    )
    connection.commit()


def _totals(connection: psycopg.Connection[Any]) -> dict[tuple[str, str, str], float]:
    rows = connection.execute(
        "SELECT queue_name, task_name, metric, value FROM dashboard_job_totals"
    )
    return {(queue, task, metric): value for queue, task, metric, value in rows}


def _deleted_in_one_statement(database_url: str, folded: str) -> dict[tuple[str, str, str], float]:
    with psycopg.connect(database_url) as connection:
        connection.execute("DELETE FROM task_results")
        connection.execute("DELETE FROM dashboard_job_totals")
        connection.commit()
        _make_jobs(connection)
        _fold_upto(connection, folded)
        deleted = connection.execute("DELETE FROM procrastinate_jobs").rowcount
        connection.commit()
        assert deleted == len(JOBS)
        left = connection.execute("SELECT count(*) FROM procrastinate_events").fetchone()
        assert left == (0,), "the jobs' events go with them"
        return _totals(connection)


@contextmanager
def _at_revision(database_url: str, revision: str) -> Iterator[None]:
    """The database migrated down to ``revision``, then back up to head."""
    engine = schema.engine_for(database_url)
    config = schema.alembic_config()
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, revision)
        yield
    finally:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
        engine.dispose()


@pytest.mark.parametrize("folded", ["none", "middle"])
def test_one_statement_folds_what_the_row_trigger_folded(database_url: str, folded: str) -> None:
    ours = _deleted_in_one_statement(database_url, folded)
    with _at_revision(database_url, "0017"):
        theirs = _deleted_in_one_statement(database_url, folded)

    assert ours == theirs
    assert ours[("a", "t2", "lost_runs")] == 3
    assert ours[("b", "t2", "lost_runs")] == 4
    assert ours[("c", "t3", "failed")] == 1
    if folded == "none":
        assert ours[("a", "t1", "succeeded")] == 10 + 3
        assert ours[("a", "t1", "duration_sum")] == 2.0 + 0.5 + 3.0
        assert ours[("b", "t1", "retried")] == 1
        assert ours[("b", "t1", "duration_count")] == 2
        assert ours[("b", "t1", "le:3600")] == 1  # the outcome's 4000 s is in no bucket
        assert ours[("a", "t2", "retried")] == 1  # deferred_for_retry
        assert ours[("b", "t2", "duration_count")] == 1  # the aborted one
        assert len(ours) > 40
    else:
        # the events of queue a's jobs (the first half) were folded already, not b's
        assert ours[("a", "t1", "succeeded")] == 10
        assert ("a", "t2", "failed") not in ours
        assert ours[("b", "t2", "aborted")] == 1
        assert ours[("b", "t1", "succeeded")] == 1


def test_one_statement_updates_each_row_of_totals_once(database_url: str) -> None:
    with psycopg.connect(database_url) as connection:
        _make_jobs(connection, times=30)

        with connection.transaction():
            # counted from inside the transaction: the counts of the previous ones may not
            # have been reported yet
            before = _rows_written(connection)
            deleted = connection.execute("DELETE FROM procrastinate_jobs").rowcount
            rows_written = _rows_written(connection) - before
        rows = connection.execute("SELECT count(*) FROM dashboard_job_totals").fetchone()

    assert deleted == 30 * len(JOBS)
    assert rows is not None and rows[0] > 40
    assert 40 < rows_written <= rows[0], "each row of totals written once, not once per job"


def _rows_written(connection: psycopg.Connection[Any]) -> int:
    """Rows of totals inserted or updated by this transaction so far."""
    row = connection.execute(
        "SELECT pg_stat_get_xact_tuples_updated('dashboard_job_totals'::regclass)"
        " + pg_stat_get_xact_tuples_inserted('dashboard_job_totals'::regclass)"
    ).fetchone()
    assert row is not None
    return int(row[0])


def test_deleting_no_job_touches_no_totals(database_url: str) -> None:
    with psycopg.connect(database_url) as connection:
        _make_jobs(connection)
        connection.execute("SELECT folded_upto FROM dashboard_metric_state FOR UPDATE")
        with psycopg.connect(database_url) as other:
            other.execute("SET lock_timeout = '5s'")
            deleted = other.execute("DELETE FROM procrastinate_jobs WHERE id < 0").rowcount
            other.commit()
        connection.rollback()

    assert deleted == 0  # without waiting for the fold state's lock


def _routines(engine: sa.Engine) -> dict[str, str]:
    """Definitions of our functions and triggers on the job tables."""
    with engine.connect() as connection:
        functions = connection.execute(
            sa.text(
                "SELECT p.oid::regprocedure::text, pg_get_functiondef(p.oid) FROM pg_proc AS p"
                " WHERE p.proname LIKE 'tl\\_%' AND p.prokind = 'f'"
            )
        ).all()
        triggers = connection.execute(
            sa.text(
                "SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger"
                " WHERE NOT tgisinternal AND tgrelid IN"
                " ('procrastinate_jobs'::regclass, 'procrastinate_events'::regclass)"
            )
        ).all()
    return dict(functions) | dict(triggers)


def test_downgrade_restores_the_row_trigger_and_upgrade_the_statement_one(
    empty_database_url: str,
) -> None:
    engine = schema.engine_for(empty_database_url)
    config = schema.alembic_config()
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "0017")
        at_0017 = _routines(engine)
        schema.upgrade(engine)
        at_head = _routines(engine)
        with _at_revision(empty_database_url, "0017"):
            downgraded = _routines(engine)
        upgraded_again = _routines(engine)
    finally:
        engine.dispose()

    assert downgraded == at_0017
    assert upgraded_again == at_head
    assert "tl_dashboard_job_deleted" in at_0017
    assert "tl_dashboard_job_deleted" not in at_head
    assert "FOR EACH STATEMENT" in at_head["tl_dashboard_jobs_deleted"]
