"""Rows as the worker leaves them, aged: finished jobs with their events, outcomes, mail
deliveries and scheduler ticks, for the retention tests."""

from __future__ import annotations

import uuid
from datetime import timedelta

import sqlalchemy as sa

from tests import sample_tasks
from worker import db

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
FINAL = ("succeeded", "failed", "aborted")


def execute(statement: str, **params: object) -> sa.CursorResult[object]:
    with db.session_scope(new=True) as session:
        return session.execute(sa.text(statement), params)  # type: ignore[return-value]


def scalars(statement: str, **params: object) -> list[object]:
    with db.session_scope(new=True) as session:
        return list(session.scalars(sa.text(statement), params))


def make_job(status: str, age: timedelta, *, outcome: str | None = None) -> int:
    """A job that reached ``status`` ``age`` ago, as the worker leaves it (events included)."""
    job_id = sample_tasks.add.delay(1, 2).id
    if status == "cancelled":
        execute("UPDATE procrastinate_jobs SET status = 'cancelled' WHERE id = :id", id=job_id)
    elif status != "todo":
        execute(
            "UPDATE procrastinate_jobs SET status = 'doing', runs = runs + 1 WHERE id = :id",
            id=job_id,
        )
        if status in FINAL:
            if status == "aborted":
                execute("UPDATE procrastinate_jobs SET abort_requested = true WHERE id = :id",
                        id=job_id)  # fmt: skip
            execute(
                "UPDATE procrastinate_jobs SET status = CAST(:status AS procrastinate_job_status)"
                " WHERE id = :id",
                id=job_id, status=status,
            )  # fmt: skip
    execute("UPDATE procrastinate_events SET at = at - :age WHERE job_id = :id", id=job_id, age=age)
    if outcome is not None:
        make_outcome(job_id, outcome, age)
    return job_id


def make_outcome(job_id: int, status: str, age: timedelta) -> None:
    execute(
        "INSERT INTO task_results (job_id, task_name, queue_name, status, result, error, attempt,"
        " started_at, finished_at, duration) VALUES (:id, 'tests.add', 'default', :status,"
        " NULL, NULL, 1, now() - :age, now() - :age, 0)",
        id=job_id, status=status, age=age,
    )  # fmt: skip


def make_delivery(job_id: int, age: timedelta) -> uuid.UUID:
    delivery_id = uuid.uuid4()
    execute(
        "INSERT INTO mail_deliveries (id, job_id, mail_type, recipient, language, status,"
        " backend, created_at) VALUES (:id, :job_id, 'invite_member', :to, 'en-US', 'sent',"
        " 'smtp', now() - :age)",
        id=delivery_id, job_id=job_id, to=f"{delivery_id}@example.com", age=age,
    )  # fmt: skip
    return delivery_id


def make_tick(name: str, age: timedelta) -> None:
    execute(
        "INSERT INTO scheduler_ticks (job_name, tick_at, outcome) VALUES (:name, now() - :age,"
        " 'deferred')",
        name=name, age=age,
    )  # fmt: skip


def make_status(status: str, age: timedelta | None) -> uuid.UUID:
    """A job status row of Dify's console, finished ``age`` ago (``None``: not finished)."""
    job_id = uuid.uuid4()
    execute(
        "INSERT INTO job_statuses (job_id, kind, status, finished_at) VALUES (:id,"
        " 'annotation_batch_import', :status, now() - CAST(:age AS interval))",
        id=job_id, status=status, age=age,
    )  # fmt: skip
    return job_id
