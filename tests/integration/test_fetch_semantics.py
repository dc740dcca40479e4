"""Our batched fetch (``tl_fetch_jobs``) takes jobs as procrastinate's own fetch does: priority
then id, ``scheduled_at``, queue filters, never two ``doing`` jobs of one lock (within a batch
too). The same fixtures go through both, and the order and locking are compared."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

QUEUES = ["q1", "q2"]

#: (queue, priority, lock, scheduled in seconds from now or None, status)
FIXTURES = [
    ("q1", 0, None, None, "todo"),
    ("q1", 5, None, None, "todo"),
    ("q2", 0, "L1", None, "todo"),
    ("q1", 0, "L1", None, "todo"),  # same lock as the one before: after it
    ("q1", 9, "L1", None, "todo"),  # higher priority, same lock: first of the three
    ("q1", 0, "L2", None, "doing"),  # holds L2
    ("q2", 3, "L2", None, "todo"),  # waits for L2
    ("q1", 1, None, 3600, "todo"),  # not due yet
    ("q1", 2, None, -5, "todo"),  # due
    ("q3", 7, None, None, "todo"),  # another queue
    ("q2", 5, "L3", None, "todo"),
    ("q2", 5, "L3", None, "todo"),
    ("q1", 5, None, None, "todo"),
]


@pytest.fixture
def connection(postgresql: psycopg.Connection) -> Iterator[psycopg.Connection]:
    postgresql.autocommit = False
    for queue, priority, lock, delay, status in FIXTURES:
        postgresql.execute(
            "INSERT INTO procrastinate_jobs (queue_name, task_name, priority, lock, "
            "scheduled_at, status) VALUES (%s, 't', %s, %s, "
            "CASE WHEN %s::float IS NULL THEN NULL "
            "ELSE now() + make_interval(secs => %s::float) END, %s)",
            (queue, priority, lock, delay, delay, status),
        )
    postgresql.commit()
    yield postgresql
    postgresql.rollback()


def worker(connection: psycopg.Connection) -> int:
    row = connection.execute(
        "INSERT INTO procrastinate_workers DEFAULT VALUES RETURNING id"
    ).fetchone()
    assert row is not None
    return int(row[0])


def procrastinate_sequence(connection: psycopg.Connection, queues: list[str] | None) -> list[int]:
    """Ids in the order procrastinate's fetch takes them, one at a time, none finished."""
    taken = []
    worker_id = worker(connection)
    while True:
        row = connection.execute(
            "SELECT id FROM procrastinate_fetch_job_v2(%s::varchar[], %s)", (queues, worker_id)
        ).fetchone()
        if row is None or row[0] is None:
            break
        taken.append(row[0])
    connection.rollback()
    return taken


def our_batches(connection: psycopg.Connection, queues: list[str], limit: int) -> list[list[int]]:
    batches = []
    worker_id = worker(connection)
    while True:
        rows = connection.execute(
            "SELECT id FROM tl_fetch_jobs(%s::varchar[], %s, %s, false, 60)",
            (queues, worker_id, limit),
        ).fetchall()
        if not rows:
            break
        batches.append([row[0] for row in rows])
    connection.rollback()
    return batches


@pytest.mark.parametrize("queues", [QUEUES, ["q1"], ["q2"], ["q1", "q2", "q3"]])
def test_one_at_a_time_we_take_what_procrastinate_takes_in_its_order(
    connection: psycopg.Connection, queues: list[str]
) -> None:
    theirs = procrastinate_sequence(connection, queues)

    ours = [batch[0] for batch in our_batches(connection, queues, limit=1)]

    assert ours == theirs
    assert theirs, "the fixtures give both something to take"


@pytest.mark.parametrize("limit", [2, 3, 100])
def test_a_batch_takes_the_same_jobs_in_the_same_order_and_one_per_lock(
    connection: psycopg.Connection, limit: int
) -> None:
    theirs = procrastinate_sequence(connection, QUEUES)

    batches = our_batches(connection, QUEUES, limit)

    assert [job for batch in batches for job in batch] == theirs
    locks = dict(
        connection.execute(
            "SELECT id, lock FROM procrastinate_jobs WHERE lock IS NOT NULL"
        ).fetchall()
    )
    for batch in batches:
        held = [locks[job] for job in batch if job in locks]
        assert len(held) == len(set(held)), "never two jobs of one lock in a batch"
    connection.rollback()


def test_jobs_left_behind_are_exactly_those_procrastinate_leaves(
    connection: psycopg.Connection,
) -> None:
    every = {
        row[0]
        for row in connection.execute("SELECT id FROM procrastinate_jobs WHERE status = 'todo'")
    }
    connection.rollback()
    theirs = set(procrastinate_sequence(connection, QUEUES))

    ours = {job for batch in our_batches(connection, QUEUES, 100) for job in batch}

    assert ours == theirs
    assert every - ours, "locked, future and other-queue jobs stay waiting"
