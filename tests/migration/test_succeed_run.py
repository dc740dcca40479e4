"""``tl_succeed_run`` (0016) ends a run as ``tl_end_runs`` does, raises on a fence, and lets the
worker send it with ``COMMIT`` in one message."""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest

from worker.jobs.state import FENCED_SQLSTATE

#: (name, lock, run the end claims, result, record, mask): each played through both functions.
CASES = [
    ("plain", None, 1, None, False, None),
    ("locked", "the-lock", 1, None, False, None),
    ("recorded", None, 1, {"n": 1, "quote": "it's"}, True, None),
    ("secret", None, 1, None, False, {"code": "***"}),
    ("recorded-secret", None, 1, "done", True, {"code": "***"}),
]


def _job(connection: psycopg.Connection[Any], name: str, lock: str | None) -> int:
    row = connection.execute(
        "INSERT INTO procrastinate_jobs (queue_name, task_name, lock, args, status, runs,"
        " run_started_at) VALUES ('q', 't', %s, %s, 'doing', 1, now()) RETURNING id",
        (lock, json.dumps({"code": "161803", "to": name})),
    ).fetchone()
    assert row is not None
    return int(row[0])


def _state(connection: psycopg.Connection[Any], job_id: int) -> tuple[Any, ...]:
    job = connection.execute(
        "SELECT status::text, attempts, args, abort_requested FROM procrastinate_jobs"
        " WHERE id = %s",
        (job_id,),
    ).fetchone()
    result = connection.execute(
        "SELECT status, result, error, attempt FROM task_results WHERE job_id = %s", (job_id,)
    ).fetchone()
    events = connection.execute(
        "SELECT type::text FROM procrastinate_events WHERE job_id = %s ORDER BY id", (job_id,)
    ).fetchall()
    return job, result, [event[0] for event in events]


def _woken(connection: psycopg.Connection[Any], job_id: int) -> bool:
    payloads = [json.loads(n.payload) for n in connection.notifies(timeout=0.3, stop_after=1)]
    return {"type": "job_inserted", "job_id": job_id} in payloads


@pytest.mark.parametrize(("name", "lock", "run", "result", "record", "mask"), CASES)
def test_a_success_ends_as_end_runs_ends_it(
    database_url: str, name: str, lock: str | None, run: int, result: Any, record: bool,
    mask: dict[str, str] | None,
) -> None:  # fmt: skip
    with psycopg.connect(database_url) as connection:
        connection.execute('LISTEN "procrastinate_queue_v1#q"')
        by_end_runs = _job(connection, name, lock and f"{lock}-1")
        by_succeed = _job(connection, name, lock and f"{lock}-2")
        connection.commit()
        connection.execute(
            "SELECT * FROM tl_end_runs(%s::jsonb)",
            (json.dumps([{"id": by_end_runs, "run": run, "action": "succeeded",
                          "result": result, "record": record, "mask": mask}]),),
        )  # fmt: skip
        connection.commit()
        woken_by_end_runs = _woken(connection, by_end_runs)
        connection.execute(
            "SELECT tl_succeed_run(%s, %s, %s::jsonb, %s, %s::jsonb)",
            (by_succeed, run, json.dumps(result) if result is not None else None, record,
             json.dumps(mask) if mask is not None else None),
        )  # fmt: skip
        connection.commit()
        woken_by_succeed = _woken(connection, by_succeed)

        assert _state(connection, by_succeed) == _state(connection, by_end_runs)
        assert _state(connection, by_succeed)[0][0] == "succeeded"
        assert woken_by_succeed == woken_by_end_runs == (lock is not None)


@pytest.mark.parametrize("record", [False, True])
def test_a_fenced_run_raises_and_the_commit_sent_with_it_commits_nothing(
    database_url: str, record: bool
) -> None:
    with psycopg.connect(database_url) as connection:
        job_id = _job(connection, "fenced", None)
        connection.execute("CREATE TABLE IF NOT EXISTS written (job_id bigint)")
        connection.commit()
        before = _state(connection, job_id)
        connection.execute("INSERT INTO written VALUES (%s)", (job_id,))  # the task's write

        with pytest.raises(psycopg.Error) as raised:
            # what the worker sends: the end and COMMIT in one message (simple query protocol)
            connection.execute(
                f"SELECT tl_succeed_run({job_id}, 7, NULL, {str(record).lower()}, NULL); COMMIT"
            )
        connection.rollback()

        assert raised.value.sqlstate == FENCED_SQLSTATE
        assert f"job {job_id} no longer belongs to run 7" in str(raised.value)
        assert _state(connection, job_id) == before, "a fenced run writes nothing"
        written = connection.execute(
            "SELECT count(*) FROM written WHERE job_id = %s", (job_id,)
        ).fetchone()
        assert written == (0,), "the COMMIT after the error was not run: the write rolled back"


def test_a_run_ended_twice_is_fenced_the_second_time(database_url: str) -> None:
    with psycopg.connect(database_url) as connection:
        job_id = _job(connection, "twice", None)
        connection.commit()
        connection.execute("SELECT tl_succeed_run(%s, 1, NULL, false, NULL)", (job_id,))
        connection.commit()

        with pytest.raises(psycopg.Error) as raised:
            connection.execute("SELECT tl_succeed_run(%s, 1, NULL, false, NULL)", (job_id,))
        connection.rollback()

        assert raised.value.sqlstate == FENCED_SQLSTATE
        assert _state(connection, job_id)[0][:2] == ("succeeded", 1), "attempts counted once"
