"""Deferring without procrastinate's per-job objects: one statement per chunk, the same rows."""

from __future__ import annotations

import datetime
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa

from tests import sample_tasks
from tests.inprocess import drain
from worker import db, runtime
from worker.app import app
from worker.jobs import AlreadyEnqueued, deferring, group


@pytest.fixture(autouse=True)
def task_layer(database_url: str) -> Iterator[runtime.Runtime]:
    yield runtime.setup(database_url)
    runtime.teardown()


@pytest.fixture
def statements(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of every insert statement deferring sends."""
    sizes: list[int] = []
    insert = deferring.insert

    def counted(connection: Any, jobs: Any) -> list[int]:
        sizes.append(len(jobs))
        return insert(connection, jobs)

    monkeypatch.setattr(deferring, "insert", counted)
    return sizes


def rows(where: str = "TRUE") -> list[sa.Row[Any]]:
    with db.session_scope(new=True) as session:
        return list(
            session.execute(
                sa.text(
                    "SELECT j.id, j.queue_name, j.task_name, j.priority, j.lock, j.queueing_lock,"
                    " j.args, j.scheduled_at, j.status,"
                    " (SELECT array_agg(e.type ORDER BY e.id) FROM procrastinate_events e"
                    "  WHERE e.job_id = j.id)::text[] AS events"
                    f" FROM procrastinate_jobs j WHERE {where} ORDER BY j.id"
                )
            )
        )


def test_our_rows_are_procrastinates_rows(statements: list[int]) -> None:
    at = datetime.datetime(2031, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    ours = sample_tasks.add.apply_async(
        args=(1, 2), queue="mail", priority=7, lock="l1", queueing_lock="q1", eta=at
    )
    theirs = (
        app.tasks["tests.add"]
        .configure(queue="mail", priority=7, lock="l2", queueing_lock="q2", schedule_at=at)
        .defer(x=1, y=2)
    )

    mine, reference = rows()
    assert statements == [1]
    assert (mine.id, reference.id) == (ours.id, theirs)
    for column in ("queue_name", "task_name", "priority", "args", "scheduled_at", "status"):
        assert getattr(mine, column) == getattr(reference, column), column
    assert (mine.lock, mine.queueing_lock) == ("l1", "q1")
    assert mine.events == reference.events == ["scheduled", "deferred"]


def test_a_group_is_one_statement_per_chunk_and_keeps_its_order(
    statements: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(deferring, "CHUNK", 40)
    signatures = [sample_tasks.add.s(x, 1) if x % 3 else sample_tasks.mail_like.s(f"m{x}")
                  for x in range(100)]  # fmt: skip

    result = group(signatures).apply_async()

    assert statements == [40, 40, 20], "mixed tasks and queues still share a statement"
    stored = rows()
    assert [r.id for r in stored] == [r.id for r in result.results]
    assert [r.task_name for r in stored] == [s.task.name for s in signatures]
    assert [r.args for r in stored] == [s.arguments for s in signatures]
    assert {r.queue_name for r in stored} == {"default", "mail"}
    drain()
    assert result.get(timeout=5)[1] == 2


@pytest.fixture
def locked_group(monkeypatch: pytest.MonkeyPatch) -> None:
    """``tests.add`` jobs with a queueing lock per first argument."""
    monkeypatch.setattr(sample_tasks.add, "queueing_lock", "add:{x}")


@pytest.mark.usefixtures("locked_group")
def test_a_queueing_lock_conflict_in_a_group_inserts_none_of_it_and_names_the_lock() -> None:
    sample_tasks.add.delay(2, 0)

    with db.session_scope():
        with pytest.raises(AlreadyEnqueued, match="queueing lock add:2"):
            group(sample_tasks.add.s(x, 0) for x in range(4)).apply_async()
        sample_tasks.add.delay(5, 5)  # the caller's transaction is still usable
    assert [r.queueing_lock for r in rows()] == ["add:2", "add:5"]

    with pytest.raises(AlreadyEnqueued, match="queueing lock add:2"):
        group(sample_tasks.add.s(x, 0) for x in range(4)).apply_async()  # no transaction
    assert len(rows()) == 2


def test_a_refused_insert_is_a_connector_error_with_its_cause() -> None:
    from procrastinate import exceptions

    with pytest.raises(exceptions.ConnectorException) as caught:
        sample_tasks.add.apply_async(args=(1, 1), priority=2**40)
    assert isinstance(caught.value.__cause__, psycopg.Error)
    assert rows() == []


def terminate_other_backends() -> int:
    """Terminate every other client connection of the test database (what a server restart
    does to a pool); return how many."""
    with psycopg.connect(runtime.current().database_url, autocommit=True) as admin:
        killed = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            " AND backend_type = 'client backend'"
        ).fetchone()
    time.sleep(0.2)  # the backends exit and say goodbye (not an assertion on time)
    return killed[0] if killed else 0


def test_a_connection_the_server_dropped_is_replaced_before_use() -> None:
    sample_tasks.add.delay(1, 1)  # a pooled connection now exists, in use a moment ago
    assert terminate_other_backends() >= 1

    sample_tasks.add.delay(2, 2)  # no error: the dead connection was tested and replaced

    assert len(rows()) == 2


@pytest.fixture
def pings(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The round trips the checkout test made."""
    made: list[str] = []

    class Counting:
        def __init__(self, connection: Any) -> None:
            self._connection = connection

        def __getattr__(self, name: str) -> Any:
            return getattr(self._connection, name)

        def execute(self, query: str) -> Any:
            made.append(query)
            return self._connection.execute(query)

    original = db._test_if_suspect
    monkeypatch.setattr(
        db,
        "_test_if_suspect",
        lambda connection, record, proxy: original(Counting(connection), record, proxy),
    )
    return made


def test_a_connection_in_steady_use_is_not_tested(
    pings: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = db.make_engine(runtime.current().database_url, pool_size=1)
    try:
        for _ in range(20):
            with engine.connect() as connection:
                connection.execute(sa.text("SELECT 1"))
        assert pings == [], "a connection in steady use costs no round trip"
        monkeypatch.setattr(db, "PING_IDLE_AFTER", 0.0)
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
        assert len(pings) == 1, "one left idle past the limit is tested"
    finally:
        engine.dispose()
