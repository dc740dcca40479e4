"""Migration 0015's statement triggers write what procrastinate's row triggers wrote."""

from __future__ import annotations

import importlib.util
import json
from typing import Any

import psycopg

from worker.schema import MIGRATIONS_DIR

#: Every transition procrastinate's triggers record, on jobs inserted by one statement (as
#: deferring does) and moved by multi-row updates (as the batched fetch and ends do).
SCENARIO = [
    "INSERT INTO procrastinate_jobs (queue_name, task_name, args, scheduled_at)"
    " SELECT q, 't', '{}', s FROM (VALUES ('a', NULL::timestamptz), ('a', NULL),"
    " ('b', now() + interval '1 hour'), ('b', NULL), ('a', NULL), ('a', NULL), ('c', NULL))"
    " AS v(q, s) RETURNING id",
    "UPDATE procrastinate_jobs SET status = 'doing' WHERE id <= {first} + 3",
    "UPDATE procrastinate_jobs SET status = CASE id - {first}"
    " WHEN 0 THEN 'succeeded' WHEN 1 THEN 'failed' WHEN 2 THEN 'aborted' ELSE 'todo' END::"
    "procrastinate_job_status, scheduled_at = CASE WHEN id = {first} + 3"
    " THEN now() + interval '1 minute' ELSE scheduled_at END WHERE id <= {first} + 3",
    "UPDATE procrastinate_jobs SET status = 'cancelled' WHERE id = {first} + 4",
    "UPDATE procrastinate_jobs SET status = 'succeeded' WHERE id = {first} + 5",
    "UPDATE procrastinate_jobs SET status = 'todo' WHERE id = {first} + 1",
    "UPDATE procrastinate_jobs SET priority = 5 WHERE id >= {first}",  # no status change
    "DELETE FROM procrastinate_jobs WHERE id IN ({first} + 4, {first} + 6)",  # events go too
]


def _migration() -> Any:
    path = MIGRATIONS_DIR / "versions" / "0015_statement_job_triggers.py"
    spec = importlib.util.spec_from_file_location("migration_0015", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _play(connection: psycopg.Connection[Any]) -> tuple[list[tuple[Any, ...]], list[str]]:
    """Run the scenario; return the events (relative job, type, at set?) and the NOTIFYs."""
    connection.execute("LISTEN procrastinate_any_queue_v1")
    connection.execute('LISTEN "procrastinate_queue_v1#a"')
    insert, *updates = SCENARIO
    first = min(row[0] for row in connection.execute(insert))  # type: ignore[arg-type]
    for statement in updates:
        connection.execute(statement.replace("{first}", str(first)))  # type: ignore[arg-type]
    events = connection.execute(
        "SELECT job_id - %s, type::text, at IS NOT NULL,"
        " CASE WHEN type = 'scheduled' THEN at = j.scheduled_at END"
        " FROM procrastinate_events e JOIN procrastinate_jobs j ON j.id = e.job_id"
        " WHERE job_id >= %s ORDER BY job_id, e.id",
        (first, first),
    ).fetchall()
    orphans = connection.execute(
        "SELECT count(*) FROM procrastinate_events e"
        " WHERE NOT EXISTS (SELECT 1 FROM procrastinate_jobs j WHERE j.id = e.job_id)"
    ).fetchone()
    assert orphans == (0,), "the events of deleted jobs are deleted with them"
    connection.commit()
    notifies = []
    for notify in connection.notifies(timeout=0.5, stop_after=50):
        payload = json.loads(notify.payload)
        notifies.append(f"{notify.channel} {payload['type']} {payload['job_id'] - first}")
    return events, notifies


def test_statement_triggers_record_the_row_triggers_events(database_url: str) -> None:
    with psycopg.connect(database_url) as connection:
        ours = _play(connection)
        migration = _migration()
        with connection.transaction():
            _run(connection, migration.downgrade)
        try:
            theirs = _play(connection)
        finally:
            with connection.transaction():
                _run(connection, migration.upgrade)

    our_events, our_notifies = ours
    their_events, their_notifies = theirs
    assert our_events == their_events
    assert len(their_events) > 15
    # one job_inserted per queue and channel for the statement (its lowest job), not one per job
    assert sorted(our_notifies) == [
        "procrastinate_any_queue_v1 job_inserted 0",
        "procrastinate_any_queue_v1 job_inserted 2",
        "procrastinate_any_queue_v1 job_inserted 6",
        "procrastinate_queue_v1#a job_inserted 0",
    ]
    assert set(our_notifies) < set(their_notifies)
    assert len(their_notifies) == 7 + 4


def _run(connection: psycopg.Connection[Any], step: Any) -> None:
    """Run a migration step's ``op.execute`` statements on ``connection``."""

    class Op:
        @staticmethod
        def execute(statement: str) -> None:
            connection.execute(statement)  # type: ignore[arg-type]

    original = step.__globals__["op"]
    step.__globals__["op"] = Op
    try:
        step()
    finally:
        step.__globals__["op"] = original
