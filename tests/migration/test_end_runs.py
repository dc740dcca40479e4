"""``tl_end_runs`` (0015): plain successes ended by one statement, the rest as before, one batch."""

from __future__ import annotations

import json
from typing import Any

import psycopg

JOBS = [
    # (name, lock) of jobs taken by run 1
    ("plain", None),
    ("locked", "the-lock"),
    ("fenced", None),
    ("recorded", None),
    ("failed", None),
    ("retried", None),
    ("secret", None),
]


def _end(connection: psycopg.Connection[Any], ends: list[dict[str, Any]]) -> dict[int, str]:
    rows = connection.execute(
        "SELECT job_id, status FROM tl_end_runs(%s::jsonb)", (json.dumps(ends),)
    ).fetchall()
    return dict(rows)


def test_a_mixed_batch_ends_each_run_as_its_own_end_says(database_url: str) -> None:
    with psycopg.connect(database_url) as connection:
        connection.execute('LISTEN "procrastinate_queue_v1#q"')
        ids = {}
        for name, lock in JOBS:
            ids[name] = connection.execute(
                "INSERT INTO procrastinate_jobs (queue_name, task_name, lock, args, status, runs,"
                " run_started_at) VALUES ('q', 't', %s, %s, 'doing', 1, now()) RETURNING id",
                (lock, json.dumps({"code": "161803", "to": name})),
            ).fetchone()[0]  # type: ignore[index]
        connection.commit()
        ends = [
            {"id": ids["plain"], "run": 1, "action": "succeeded", "record": False},
            {"id": ids["locked"], "run": 1, "action": "succeeded", "record": False},
            {"id": ids["fenced"], "run": 7, "action": "succeeded", "record": False},
            {"id": ids["recorded"], "run": 1, "action": "succeeded", "record": True,
             "result": {"n": 1}},
            {"id": ids["failed"], "run": 1, "action": "failed", "error": "E: boom"},
            {"id": ids["retried"], "run": 1, "action": "retry", "error": "E: again",
             "retry_at": "2031-01-01T00:00:00+00:00"},
            {"id": ids["secret"], "run": 1, "action": "succeeded", "record": False,
             "mask": {"code": "***"}},
        ]  # fmt: skip

        statuses = _end(connection, ends)
        connection.commit()
        again = _end(connection, ends[:1])  # a batch written twice (its answer was lost)
        connection.commit()

        assert statuses == {
            ids["plain"]: "succeeded",
            ids["locked"]: "succeeded",
            ids["fenced"]: "fenced",
            ids["recorded"]: "succeeded",
            ids["failed"]: "failed",
            ids["retried"]: "todo",
            ids["secret"]: "succeeded",
        }
        assert again == {ids["plain"]: "fenced"}, "an end already written writes nothing"
        rows = {
            row[0]: row[1:]
            for row in connection.execute(
                "SELECT id, status::text, attempts, args->>'code' FROM procrastinate_jobs"
            )
        }
        assert rows[ids["plain"]] == ("succeeded", 1, "161803")
        assert rows[ids["fenced"]] == ("doing", 0, "161803"), "a fenced run writes nothing"
        assert rows[ids["secret"]] == ("succeeded", 1, "***"), "secret arguments erased"
        assert rows[ids["retried"]] == ("todo", 1, "161803")
        results = dict(connection.execute("SELECT job_id, status FROM task_results").fetchall())
        assert results == {
            ids["recorded"]: "SUCCESS",
            ids["failed"]: "FAILURE",
            ids["retried"]: "RETRY",
        }, "no outcome row for a success with nothing to keep"
        events = connection.execute(
            "SELECT job_id, type::text FROM procrastinate_events WHERE type <> 'scheduled'"
            " ORDER BY job_id, id"
        ).fetchall()
        assert (ids["plain"], "succeeded") in events
        assert (ids["retried"], "deferred_for_retry") in events
        assert not [e for e in events if e[0] == ids["fenced"]]
        woken = [json.loads(n.payload) for n in connection.notifies(timeout=0.5, stop_after=5)]
        assert {"type": "job_inserted", "job_id": ids["locked"]} in woken, "lock released"
