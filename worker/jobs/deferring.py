"""Deferring jobs inside the caller's transaction.

A job is inserted on the connection of the caller's SQLAlchemy session, so it commits or rolls back
with the caller's own writes and the worker is woken (NOTIFY) at commit. An insert with a queueing
lock runs inside a SAVEPOINT: a conflict raises ``AlreadyEnqueued`` and leaves the caller's
transaction usable, instead of poisoning it so that its COMMIT silently becomes a ROLLBACK.

Jobs are inserted by one prepared statement per chunk of up to :data:`CHUNK` jobs, the rows passed
as one JSON array (``json.dumps`` is C, psycopg's array dumping is not): the rows that
procrastinate's ``procrastinate_defer_jobs_v1`` inserts (its triggers send the NOTIFY and write
the ``deferred`` event), without a procrastinate ``Job`` object per job dumped as a composite
value, which cost more than the round trip itself (a ``group`` of 100 spent two thirds of its time
there). With no transaction to join, a single statement is its own transaction (autocommit): one
round trip.
"""

from __future__ import annotations

import datetime
import json
import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import psycopg
from procrastinate import exceptions, manager, tasks
from sqlalchemy import orm

from worker import db

if TYPE_CHECKING:
    from worker.jobs.task import CeleryTask

logger = logging.getLogger(__name__)

#: Jobs inserted by one statement at most.
CHUNK = 1000

_INSERT_JOBS = """
INSERT INTO procrastinate_jobs
    (queue_name, task_name, priority, lock, queueing_lock, args, scheduled_at)
SELECT queue_name, task_name, priority, lock, queueing_lock, args, scheduled_at
FROM jsonb_to_recordset(%s::jsonb)
    AS job(queue_name varchar, task_name varchar, priority int, lock text, queueing_lock text,
           args jsonb, scheduled_at timestamptz)
RETURNING id
"""


class NewJob(NamedTuple):
    """A row of ``procrastinate_jobs`` to insert (its columns, in the statement's order)."""

    queue: str
    task_name: str
    priority: int
    lock: str | None
    queueing_lock: str | None
    arguments: Mapping[str, Any]
    scheduled_at: datetime.datetime | None


def defer(
    task: tasks.Task[Any, Any, Any],
    arguments: Mapping[str, Any],
    options: Mapping[str, Any],
    *,
    session: orm.Session | None = None,
) -> int:
    """Insert one job in ``session``'s transaction (or the open ``session_scope``, or alone)."""
    return defer_many([new_job(task, arguments, options)], session=session)[0]


def defer_signatures(
    items: Sequence[tuple[CeleryTask, Mapping[str, Any], Mapping[str, Any]]],
    *,
    session: orm.Session | None = None,
) -> list[int]:
    """Insert ``(task, arguments, options)`` items together; return their ids in order."""
    return defer_many([new_job(*item) for item in items], session=session)


def new_job(
    task: tasks.Task[Any, Any, Any], arguments: Mapping[str, Any], options: Mapping[str, Any]
) -> NewJob:
    """The row of a job of ``task`` with ``configure()``-style ``options``."""
    priority = options.get("priority")
    return NewJob(
        queue=options.get("queue") or task.queue,
        task_name=task.name,
        priority=task.priority if priority is None else priority,
        lock=options.get("lock"),
        queueing_lock=options.get("queueing_lock"),
        arguments=arguments,
        scheduled_at=_scheduled_at(options),
    )


def defer_many(jobs: Sequence[NewJob], *, session: orm.Session | None = None) -> list[int]:
    """Insert ``jobs`` in ``session``'s transaction (or the open ``session_scope``); with no
    transaction to join, in one of their own, all or none; return their ids in order.

    Raises
    ------
    procrastinate.exceptions.AlreadyEnqueued
        A job with the same queueing lock is already waiting (none of ``jobs`` is inserted;
        the caller's transaction is left usable).
    procrastinate.exceptions.ConnectorException
        Any other refusal of the database (its error as ``__cause__``).
    """
    if session is None:
        session = db.current_session()
    if session is None and len(jobs) <= CHUNK:
        with db.autocommit_connection() as connection:
            driver = connection.connection.driver_connection
            assert driver is not None  # a checked-out connection has one
            return insert(driver, jobs)
    if session is None:
        with db.session_scope() as scoped:
            return defer_many(jobs, session=scoped)
    ids: list[int] = []
    for start in range(0, len(jobs), CHUNK):
        ids.extend(_insert_in_session(session, jobs[start : start + CHUNK]))
    return ids


def _insert_in_session(session: orm.Session, jobs: Sequence[NewJob]) -> list[int]:
    if not any(job.queueing_lock for job in jobs):
        return insert(db.driver_connection(session), jobs)
    # SQLAlchemy emits the SAVEPOINT lazily, at the next use of the session's connection: the
    # connection must be fetched inside the nested block.
    with session.begin_nested():
        return insert(db.driver_connection(session), jobs)


def insert(connection: psycopg.Connection[Any], jobs: Sequence[NewJob]) -> list[int]:
    """Insert ``jobs`` by one statement on ``connection`` (in its transaction, if one is open);
    return their ids in order. Errors as :func:`defer_many`."""
    count = len(jobs)
    if logger.isEnabledFor(logging.DEBUG):
        logger.debug(
            "About to defer %d %s", count, _jobs_word(count),
            extra={"action": "about_to_defer_jobs", "jobs": _log_contexts(jobs, [None] * count)},
        )  # fmt: skip
    rows = json.dumps(
        [
            {
                "queue_name": job.queue,
                "task_name": job.task_name,
                "priority": job.priority,
                "lock": job.lock,
                "queueing_lock": job.queueing_lock,
                "args": job.arguments,
                "scheduled_at": job.scheduled_at.isoformat() if job.scheduled_at else None,
            }
            for job in jobs
        ]
    )
    try:
        with connection.cursor() as cursor:
            cursor.execute(_INSERT_JOBS, (rows,), prepare=True)
            ids = [job_id for (job_id,) in cursor.fetchall()]
    except psycopg.errors.UniqueViolation as exc:
        if exc.diag.constraint_name == manager.QUEUEING_LOCK_CONSTRAINT:
            raise exceptions.AlreadyEnqueued(
                "Job cannot be enqueued: there is already a job in the queue with the "
                f"queueing lock {_conflicting_lock(exc, jobs)}"
            ) from exc
        raise exceptions.ConnectorException(str(exc)) from exc
    except psycopg.Error as exc:
        raise exceptions.ConnectorException(str(exc)) from exc
    if logger.isEnabledFor(logging.INFO):
        logger.info(
            "Deferred %d %s", count, _jobs_word(count),
            extra={"action": "jobs_deferred", "jobs": _log_contexts(jobs, ids)},
        )  # fmt: skip
    return ids


def _conflicting_lock(exc: psycopg.errors.UniqueViolation, jobs: Sequence[NewJob]) -> str | None:
    """The queueing lock refused: the only one of ``jobs``, or the one the server names."""
    locks = {job.queueing_lock for job in jobs if job.queueing_lock}
    if len(locks) == 1:
        return locks.pop()
    detail = exc.diag.message_detail or ""
    return next((lock for lock in locks if f"({lock})" in detail), None)


def _scheduled_at(options: Mapping[str, Any]) -> datetime.datetime | None:
    if options.get("schedule_at") is not None:
        at: datetime.datetime = options["schedule_at"]
        return at
    if options.get("schedule_in") is not None:
        return datetime.datetime.now(datetime.UTC) + datetime.timedelta(**options["schedule_in"])
    return None


def _jobs_word(count: int) -> str:
    return "job" if count == 1 else "jobs"


def _log_contexts(jobs: Sequence[NewJob], ids: Sequence[int | None]) -> list[dict[str, Any]]:
    """What procrastinate logs of a deferred job (its ``log_context``): fields, call string."""
    contexts = []
    for job, job_id in zip(jobs, ids, strict=True):
        arguments = ", ".join(f"{key}={value!r}" for key, value in job.arguments.items())
        contexts.append(
            {
                "id": job_id,
                "queue": job.queue,
                "task_name": job.task_name,
                "priority": job.priority,
                "lock": job.lock,
                "queueing_lock": job.queueing_lock,
                "task_kwargs": job.arguments,
                "scheduled_at": job.scheduled_at.isoformat() if job.scheduled_at else None,
                "call_string": f"{job.task_name}[{job_id}]({arguments})",
            }
        )
    return contexts
