"""The plans the server runs for a fetch and for a run's end (0017), read from ``auto_explain``.

What they must not do is what made them slow or would with a large table: plan every fetch
anew, sort or scan a queue's whole backlog, read every job for a lock check, or find a job by
reading the partial index of every running job instead of the primary key. Semantics are
tested elsewhere (``tests/integration/test_fetch_semantics.py``, ``test_succeed_run.py``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from worker.jobs import state

Connection = psycopg.Connection[Any]


@pytest.fixture
def connection(database_url: str) -> Iterator[Connection]:
    """An autocommit connection whose statements' plans, nested ones too, come as notices."""
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute("LOAD 'auto_explain'")
        for setting in (
            "auto_explain.log_min_duration = 0",
            "auto_explain.log_nested_statements = on",
            "auto_explain.sample_rate = 1",
            "client_min_messages = log",
        ):
            connection.execute(f"SET {setting}")
        yield connection


def _plans(connection: Connection, query: Any, params: Any = None) -> list[str]:
    """The plans of ``query`` and of every statement it ran."""
    notices: list[str] = []

    def keep(diagnostic: psycopg.errors.Diagnostic) -> None:
        if "plan:" in (diagnostic.message_primary or ""):
            notices.append(diagnostic.message_primary or "")

    connection.add_notice_handler(keep)
    try:
        connection.execute(query, params)
    finally:
        connection.remove_notice_handler(keep)
    assert notices, "auto_explain logged no plan"
    return notices


def _jobs(connection: Connection, queue: str, count: int, **columns: Any) -> list[int]:
    names = "".join(f", {name}" for name in columns)
    values = "".join(f", %({name})s" for name in columns)
    rows = connection.execute(
        f"INSERT INTO procrastinate_jobs (queue_name, task_name, args{names})"
        f" SELECT %(queue)s, 't', '{{}}'{values}"
        " FROM generate_series(1, %(count)s) RETURNING id",
        {"queue": queue, "count": count, **columns},
    ).fetchall()
    return [row[0] for row in rows]


def _worker(connection: Connection) -> int:
    row = connection.execute(
        "INSERT INTO procrastinate_workers (last_heartbeat) VALUES (now()) RETURNING id"
    ).fetchone()
    assert row is not None
    return int(row[0])


def _fetch(connection: Connection, worker: int, queues: list[str], limit: int) -> list[str]:
    return _plans(
        connection,
        "SELECT id FROM tl_fetch_jobs(%s::varchar[], %s, %s, false, 0)",
        (queues, worker, limit),
    )


def _the(plans: list[str], marker: str) -> str:
    found = [plan for plan in plans if marker in plan]
    assert len(found) == 1, f"{len(found)} plans mention {marker!r}"
    return found[0]


def test_a_queue_s_fetch_keeps_its_plan_and_reads_only_the_head_of_its_ready_jobs(
    connection: Connection,
) -> None:
    _jobs(connection, "big", 3000)
    _jobs(connection, "small", 30)
    connection.execute("ANALYZE procrastinate_jobs")
    worker = _worker(connection)

    for _ in range(6):  # past the 5 calls after which the server may switch to a generic plan
        plan = _the(_fetch(connection, worker, ["small"], 3), "ready AS")

    # one plan kept for every call: its queue is a parameter, not the value of this call
    assert "Index Scan using tl_jobs_ready_idx" in plan
    assert "Index Cond: ((queue_name)::text = (($" in plan
    # no scan of a whole backlog, no sort but the final one of the (at most 3) rows taken
    assert "Seq Scan on procrastinate_jobs" not in plan
    assert plan.count("Sort Key") == 1 and "Sort Key: started.priority DESC, started.id" in plan
    # the jobs taken are updated by primary key
    assert "Index Scan using procrastinate_jobs_pkey on procrastinate_jobs j" in plan


def test_a_fetch_of_several_queues_walks_procrastinate_s_priority_index(
    connection: Connection,
) -> None:
    _jobs(connection, "a", 2000)
    _jobs(connection, "b", 2000)
    connection.execute("ANALYZE procrastinate_jobs")
    worker = _worker(connection)

    for _ in range(6):
        plan = _the(_fetch(connection, worker, ["a", "b"], 3), "ready AS")

    assert "Index Scan using procrastinate_jobs_priority_idx_v1" in plan
    assert "Seq Scan on procrastinate_jobs" not in plan
    assert plan.count("Sort Key") == 1


def test_the_lock_check_of_a_locked_candidate_is_one_lookup(connection: Connection) -> None:
    for n in range(300):
        _jobs(connection, "q", 5, lock=f"lock-{n}")
    connection.execute("ANALYZE procrastinate_jobs")
    worker = _worker(connection)

    for _ in range(6):
        plans = _fetch(connection, worker, ["q"], 3)
    plan = _the(plans, "ready AS")

    assert "Index Scan using tl_jobs_active_lock_idx" in plan
    assert "Seq Scan on procrastinate_jobs" not in plan
    # and each lock is held by one running job: three jobs of three locks were taken
    taken = connection.execute(
        "SELECT count(DISTINCT lock), count(*) FROM procrastinate_jobs WHERE status = 'doing'"
    ).fetchone()
    assert taken == (18, 18)


def _running(connection: Connection, count: int) -> list[int]:
    """``count`` jobs running (as with many workers busy) among many finished, with fresh
    statistics."""
    _jobs(connection, "q", 5000, status="succeeded", runs=1)
    ids = _jobs(connection, "q", count, status="doing", runs=1, run_started_at="now")
    connection.execute("ANALYZE procrastinate_jobs")
    return ids


def _by_primary_key(plans: list[str], statement: str) -> None:
    found = [plan for plan in plans if statement in plan]
    assert found, f"no plan of {statement!r}"
    for plan in found:
        assert "using procrastinate_jobs_pkey" in plan, plan
        assert "lock_idx" not in plan, plan


def test_a_run_s_end_finds_its_job_by_primary_key(connection: Connection) -> None:
    ids = _running(connection, 200)

    _by_primary_key(
        _plans(connection, "SELECT tl_succeed_run(%s, 1, NULL, false, NULL)", (ids[0],)),
        "UPDATE procrastinate_jobs AS p",
    )
    ends = [
        {"id": ids[1], "run": 1, "action": "succeeded", "record": False},  # one UPDATE for all
        {"id": ids[2], "run": 1, "action": "failed", "error": "boom"},  # one by one
    ]
    plans = _plans(connection, "SELECT * FROM tl_end_runs(%s::jsonb)", (json.dumps(ends),))
    _by_primary_key(plans, "UPDATE procrastinate_jobs AS p")
    _by_primary_key(plans, "FOR UPDATE")  # the loop's row lock of each job


@pytest.mark.parametrize("query", ["check_run", "release_run"])
def test_a_run_s_checks_find_its_job_by_primary_key(connection: Connection, query: str) -> None:
    ids = _running(connection, 200)

    plans = _plans(connection, state.psycopg_query(query), {"job_id": ids[0], "run": 1})

    _by_primary_key(plans, "procrastinate_jobs")
