"""Inspecting and acting on jobs: what ``manage.py defer``, ``jobs`` and ``queues`` do."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from procrastinate import exceptions, tasks
from sqlalchemy import orm

from worker.domain import sql
from worker.jobs import catalog, deferring, secrets, state
from worker.jobs.results import job_state
from worker.jobs.task import CeleryTask, InvalidTaskArguments

#: Default number of rows ``jobs list`` prints.
LIST_LIMIT = 50
#: Most rows ``jobs list`` prints.
MAX_LIST_LIMIT = 10_000
#: Lowest and highest job priority (higher runs first).
PRIORITY_RANGE = (-1000, 1000)
#: Longest delay before a deferred job may start, in seconds (a year).
MAX_SCHEDULE_IN = 366 * 24 * 3600.0
#: Longest lock or queueing lock, in characters (they are indexed: PostgreSQL refuses an index
#: entry over about 2700 bytes).
MAX_LOCK_LENGTH = 512
#: Largest job id (``bigint``).
MAX_JOB_ID = 2**63 - 1


class JobCommandError(Exception):
    """A job command cannot be done as asked; the message says why."""


class InvalidJobInput(JobCommandError):
    """What was asked is malformed or out of bounds (a usage error, not the jobs' state)."""


@dataclass(frozen=True, kw_only=True)
class QueueStats:
    """Jobs of one queue by status, and how long the oldest ready job has waited."""

    queue: str
    counts: dict[str, int]
    oldest_waiting: float | None


def find_task(name: str) -> tasks.Task[Any, Any, Any]:
    """The task answering to ``name``: its registered name, an alias or its Dify function name
    (after importing every task module).

    Raises
    ------
    InvalidJobInput
        No task answers to that name, or several do.
    """
    try:
        return catalog.find(name)
    except catalog.UnknownTask as exc:
        raise InvalidJobInput(str(exc)) from None


def defer(
    session: orm.Session,
    task_name: str,
    arguments: Mapping[str, Any],
    *,
    queue: str | None = None,
    lock: str | None = None,
    queueing_lock: str | None = None,
    schedule_in: float | None = None,
    priority: int | None = None,
) -> int:
    """Defer ``task_name`` with keyword ``arguments`` checked against its signature and
    argument types.

    Raises
    ------
    InvalidJobInput
        Unknown task, arguments that do not fit it, or an option out of bounds; nothing is
        deferred.
    JobCommandError
        The database refused the job (the message is the driver's).
    procrastinate.exceptions.AlreadyEnqueued
        A job with the same queueing lock is waiting.
    """
    check_priority(priority)
    check_schedule_in(schedule_in)
    task = find_task(task_name)
    if isinstance(task, CeleryTask):
        try:
            bound = task.bind_arguments(kwargs=arguments)
            options = task.defer_options(
                bound, countdown=schedule_in, queue=queue, priority=priority,
                lock=lock, queueing_lock=queueing_lock,
            )  # fmt: skip
        except InvalidTaskArguments as exc:
            raise InvalidJobInput(str(exc)) from None
    else:
        bound = dict(arguments)
        options = {
            "queue": queue or task.queue,
            "priority": task.priority if priority is None else priority,
            "lock": lock or task.lock,
            "queueing_lock": queueing_lock or task.queueing_lock,
        }
        if schedule_in is not None:
            options["schedule_in"] = {"seconds": schedule_in}
    for option in ("lock", "queueing_lock"):
        check_lock(option, options.get(option))
    try:
        return deferring.defer(task, bound, options, session=session)
    except exceptions.AlreadyEnqueued:
        raise
    except exceptions.ConnectorException as exc:
        cause = exc.__cause__ or exc
        reason = " ".join(str(cause).split()) or type(cause).__name__
        raise JobCommandError(f"the database refused the {task.name} job: {reason}") from None


def check_priority(priority: int | None) -> None:
    """Refuse a priority outside :data:`PRIORITY_RANGE`."""
    low, high = PRIORITY_RANGE
    if priority is not None and not low <= priority <= high:
        raise InvalidJobInput(f"priority {priority} is outside {low}..{high}")


def check_schedule_in(seconds: float | None) -> None:
    """Refuse a delay that is negative, not finite or over :data:`MAX_SCHEDULE_IN`."""
    if seconds is not None and not (math.isfinite(seconds) and 0 <= seconds <= MAX_SCHEDULE_IN):
        raise InvalidJobInput(
            f"schedule-in {seconds} is not a number of seconds in 0..{MAX_SCHEDULE_IN:.0f}"
        )


def check_lock(option: str, value: str | None) -> None:
    """Refuse a lock over :data:`MAX_LOCK_LENGTH` characters (given, or filled from a template)."""
    if value is not None and len(value) > MAX_LOCK_LENGTH:
        raise InvalidJobInput(
            f"{option.replace('_', ' ')} is {len(value)} characters long; at most "
            f"{MAX_LOCK_LENGTH} are allowed"
        )


def list_jobs(
    session: orm.Session,
    *,
    queue: str | None = None,
    status: str | None = None,
    task: str | None = None,
    limit: int = LIST_LIMIT,
) -> list[sa.Row[Any]]:
    """Jobs, newest first, with their recorded outcome.

    Raises
    ------
    InvalidJobInput
        ``limit`` is outside 1..:data:`MAX_LIST_LIMIT`.
    """
    if not 1 <= limit <= MAX_LIST_LIMIT:
        raise InvalidJobInput(f"limit {limit} is outside 1..{MAX_LIST_LIMIT}")
    return list(
        session.execute(
            sa.text(sql.queries()["list_jobs"]),
            {"queue": queue, "status": status, "task": task, "limit": limit},
        ).all()
    )


def show_job(session: orm.Session, job_id: int) -> dict[str, Any]:
    """Everything known about one job.

    Raises
    ------
    JobCommandError
        No job has that id.
    """
    if not 1 <= job_id <= MAX_JOB_ID:
        raise JobCommandError(f"no job with id {job_id}")
    row = session.execute(sa.text(sql.queries()["show_job"]), {"id": job_id}).one_or_none()
    if row is None:
        raise JobCommandError(f"no job with id {job_id}")
    details = dict(row._mapping)
    details["state"] = job_state(row.status, row.attempts, row.outcome)
    catalog.import_tasks()
    details["args"] = secrets.masked_args(row.task_name, row.args or {})
    if details["finished_at"] is None:
        # no outcome row (nothing to record): the end event's statement was the whole
        # transaction, so its time is the end of the run
        details["finished_at"] = row.ended_at
    if details["duration"] is None and row.last_started_at and row.ended_at:
        details["duration"] = (row.ended_at - row.last_started_at).total_seconds()
    return details


def retry_job(session: orm.Session, job_id: int) -> None:
    """Put a failed job back in the queue now.

    Raises
    ------
    JobCommandError
        No such job, the job is not failed, or a duplicate already waits with its queueing lock.
    """
    catalog.import_tasks()  # which arguments are secret is declared there
    row = _lock_row(session, job_id)
    status, queueing_lock = str(row.status), row.queueing_lock
    if status != "failed":
        raise JobCommandError(f"job {job_id} is {status}; only failed jobs can be retried")
    masked = [n for n in secrets.names_for(row.task_name) if row.args.get(n) == secrets.MASK]
    if masked:
        raise JobCommandError(
            f"job {job_id} cannot be retried: its secret argument(s) {', '.join(masked)} were "
            "erased when it ended; defer a new job with fresh values"
        )
    if queueing_lock is not None:
        waiting = session.execute(
            sa.text(sql.queries()["waiting_job_with_queueing_lock"]),
            {"queueing_lock": queueing_lock},
        ).scalar_one_or_none()
        if waiting is not None:
            raise JobCommandError(
                f"job {job_id} cannot be retried: job {waiting} already waits with queueing "
                f"lock {queueing_lock!r}"
            )
    state.retry_failed(session, job_id)


def cancel_job(session: orm.Session, job_id: int) -> str:
    """Cancel a waiting job (its secret arguments erased), or ask a running one to abort: its
    run then ends ``aborted`` unless it succeeds first. Return what happened.

    Raises
    ------
    JobCommandError
        No such job, or it has already finished.
    """
    catalog.import_tasks()
    row = _lock_row(session, job_id)
    status = str(row.status)
    if status not in ("todo", "doing"):
        raise JobCommandError(f"job {job_id} is {status}; only waiting or running jobs cancel")
    cancelled = state.cancel(session, job_id, row.task_name)
    return "cancelled" if cancelled else "abort requested"


def queue_stats(session: orm.Session, queue_names: list[str]) -> list[QueueStats]:
    """Counts by status and age of the oldest ready job, for ``queue_names`` and any other
    queue that has jobs."""
    stats: dict[str, QueueStats] = {
        name: QueueStats(queue=name, counts={}, oldest_waiting=None) for name in queue_names
    }
    for row in session.execute(sa.text(sql.queries()["queue_stats"])).all():
        current = stats.get(row.queue_name) or QueueStats(
            queue=row.queue_name, counts={}, oldest_waiting=None
        )
        current.counts[row.status] = row.jobs
        oldest = current.oldest_waiting
        if row.oldest_waiting is not None:
            oldest = max(oldest or 0.0, float(row.oldest_waiting))
        stats[row.queue_name] = QueueStats(
            queue=row.queue_name, counts=current.counts, oldest_waiting=oldest
        )
    return list(stats.values())


def parse_arguments(text: str) -> dict[str, Any]:
    """The ``--json`` argument of ``defer``: a JSON object.

    Raises
    ------
    InvalidJobInput
        Not JSON (``NaN`` and ``Infinity`` are not), or not an object.
    """
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise InvalidJobInput(f"--json is not valid JSON: {exc}") from None
    except ValueError as exc:
        raise InvalidJobInput(f"--json is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise InvalidJobInput(
            f"--json must be an object of keyword arguments, got {type(value).__name__}"
        )
    return value


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def _lock_row(session: orm.Session, job_id: int) -> sa.Row[Any]:
    """The job's row (status, queueing lock, task name, arguments), locked."""
    if not 1 <= job_id <= MAX_JOB_ID:
        raise JobCommandError(f"no job with id {job_id}")
    row = session.execute(sa.text(sql.queries()["lock_job_row"]), {"id": job_id}).one_or_none()
    if row is None:
        raise JobCommandError(f"no job with id {job_id}")
    return row
