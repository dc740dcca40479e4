"""Statuses of the jobs Dify's console polls by job id (table ``job_statuses``).

They replace Dify's Redis keys (``enable_app_annotation_job_{job_id}``,
``app_annotation_batch_import_{job_id}``, ``segment_batch_import_{job_id}``, ... with a 10-minute
TTL) and are written in the same transactions as the work:

- app code defers the job with :func:`defer`, which records it ``waiting`` in the caller's
  transaction: a rollback leaves neither the job nor the row;
- the job's service runs under :func:`tracking`: ``completed`` goes through the job's session, so
  it commits with the job's writes and outcome; a failure records ``error`` with the message on
  the last attempt, or ``processing`` with the message when a retry follows, in a step of its own;
- :func:`read` answers in Dify's shape. A job that is gone, failed or was cancelled without
  recording its end reads ``error``: nothing polls for ever.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol

import sqlalchemy as sa
from procrastinate.exceptions import AlreadyEnqueued
from sqlalchemy import orm
from sqlalchemy.dialects.postgresql import insert

from worker.domain import sql
from worker.domain.errors import PermanentError
from worker.domain.models import JobKind, JobState, JobStatus
from worker.domain.uow import UnitOfWork

logger = logging.getLogger(__name__)

#: The task argument naming what a job of each kind works on (the row's ``target_id``).
TARGET_ARGUMENT: dict[JobKind, str] = {
    JobKind.ANNOTATION_REPLY_ENABLE: "app_id",
    JobKind.ANNOTATION_REPLY_DISABLE: "app_id",
    JobKind.ANNOTATION_BATCH_IMPORT: "app_id",
    JobKind.SEGMENT_BATCH_IMPORT: "document_id",
}
#: What :func:`read` says of a job whose procrastinate job ended without recording its end.
GONE = "the job no longer exists"
FAILED = "the job failed"
CANCELLED = "the job was cancelled"
UNRECORDED = "the job ended without recording its status"

#: Whether the job will run again after a failure (``worker.jobs.will_retry`` in a job).
Retrying = Callable[[BaseException], bool]


class JobNotFound(LookupError):
    """The job does not exist (Dify: "The job does not exist.")."""

    def __init__(self) -> None:
        super().__init__("The job does not exist.")


class _Deferred(Protocol):
    @property
    def id(self) -> int: ...


class Deferrable(Protocol):
    """What :func:`defer` needs of a task (``worker.jobs.CeleryTask``)."""

    def apply_async(
        self, *, kwargs: Mapping[str, Any], session: orm.Session | None = None
    ) -> _Deferred: ...

    def defer_options(self, arguments: Mapping[str, Any]) -> dict[str, Any]: ...


def _never(exc: BaseException) -> bool:
    return False


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _uuid_or_none(value: object) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value is not None else None
    except ValueError:
        return None


def defer(
    session: orm.Session, kind: JobKind, task: Deferrable, **arguments: Any
) -> dict[str, str]:
    """Defer ``task`` in ``session``'s transaction and record its job ``waiting`` there too.

    ``arguments`` are the task's; they hold ``job_id`` (Dify's: a uuid the caller generated) and
    ``tenant_id``. Returns Dify's answer, ``{"job_id": ..., "job_status": "waiting"}``; when the
    task's queueing lock is held by a waiting job (one enable or disable of an app waits at a
    time), nothing is deferred and the answer is that job's ``{"job_id": ..., "job_status":
    "processing"}``, as Dify's service answers while one is in flight.

    Raises
    ------
    ValueError
        ``job_id`` is not a uuid.
    procrastinate.exceptions.AlreadyEnqueued
        The queueing lock is held by a job deferred without this helper (no status to show).
    """
    job_id = uuid.UUID(str(arguments["job_id"]))
    try:
        deferred = task.apply_async(kwargs=arguments, session=session)
    except AlreadyEnqueued:
        lock = task.defer_options(arguments).get("queueing_lock")
        queued = session.execute(
            sa.text(sql.queries()["job_status_of_queued"]), {"queueing_lock": lock}
        ).scalar_one_or_none()
        if queued is None:
            raise
        return {"job_id": str(queued), "job_status": JobState.PROCESSING.value}
    values = {
        "status": JobState.WAITING,
        "error": None,
        "procrastinate_job_id": deferred.id,
        "finished_at": None,
        "updated_at": now(),
    }
    session.execute(
        insert(JobStatus)
        .values(
            job_id=job_id,
            kind=kind.value,
            tenant_id=_uuid_or_none(arguments.get("tenant_id")),
            target_id=_uuid_or_none(arguments.get(TARGET_ARGUMENT[kind])),
            **values,
        )
        .on_conflict_do_update(index_elements=["job_id", "kind"], set_=values)
    )
    return {"job_id": str(job_id), "job_status": JobState.WAITING.value}


def record(
    session: orm.Session,
    kind: JobKind,
    job_id: uuid.UUID,
    state: JobState,
    *,
    error: str | None = None,
    tenant_id: uuid.UUID | None = None,
    target_id: uuid.UUID | None = None,
) -> None:
    """Set a job's status (inserting its row if it was deferred without :func:`defer`)."""
    finished = now() if state in (JobState.COMPLETED, JobState.ERROR) else None
    values = {"status": state, "error": error, "finished_at": finished, "updated_at": now()}
    session.execute(
        insert(JobStatus)
        .values(job_id=job_id, kind=kind.value, tenant_id=tenant_id, target_id=target_id, **values)
        .on_conflict_do_update(index_elements=["job_id", "kind"], set_=values)
    )


@contextlib.contextmanager
def tracking(
    uow: UnitOfWork,
    kind: JobKind,
    job_id: str,
    *,
    tenant_id: str | None = None,
    target_id: str | None = None,
    retrying: Retrying = _never,
) -> Iterator[None]:
    """Run the block as the work of job ``job_id`` and record how it ended.

    When the block ends, ``completed`` is written through ``uow.session`` (it commits with what
    the block left there and the job's outcome). When it raises, what ``uow.session`` holds is
    rolled back and, in a step of its own, the status becomes ``error`` with the message, or
    ``processing`` with the message when ``retrying`` says the job runs again; then it re-raises.

    Raises
    ------
    PermanentError
        ``job_id`` is not a uuid (no status can be recorded).
    """
    try:
        ident = uuid.UUID(job_id)
    except ValueError:
        raise PermanentError(f"job id {job_id!r} is not a uuid") from None
    tenant, target = _uuid_or_none(tenant_id), _uuid_or_none(target_id)
    try:
        yield
    except Exception as exc:
        retried = retrying(exc)
        message = reason(exc)
        uow.rollback()
        state = JobState.PROCESSING if retried else JobState.ERROR
        with uow.step() as session:
            record(session, kind, ident, state, error=message, tenant_id=tenant, target_id=target)
        logger.warning(
            "%s job %s failed%s: %s",
            kind.value,
            job_id,
            ", to be retried" if retried else "",
            message,
            extra={"action": "job_status_error", "job_kind": kind.value, "dify_job_id": job_id},
        )
        raise
    record(uow.session, kind, ident, JobState.COMPLETED, tenant_id=tenant, target_id=target)


def reason(exc: BaseException) -> str:
    """The message a failure leaves in the status (a database error's own, never its SQL)."""
    if isinstance(exc, sa.exc.DBAPIError) and exc.orig is not None:
        exc = exc.orig
    return str(exc).strip() or type(exc).__name__


def read(session: orm.Session, kind: JobKind, job_id: str) -> dict[str, str]:
    """Dify's answer to a status poll: ``{"job_id", "job_status", "error_msg"}``.

    ``error_msg`` is the error of a job in ``error``, else empty. A job still ``waiting`` or
    ``processing`` whose procrastinate job is gone, failed, or was cancelled reads ``error``
    (with why); one that is running or waiting for a retry reads ``processing``.

    Raises
    ------
    JobNotFound
        No job of this kind has this id (Dify: the key expired or never existed).
    """
    ident = _uuid_or_none(job_id)
    row = None
    if ident is not None:
        query = sa.text(sql.queries()["job_status_read"])
        row = session.execute(query, {"job_id": ident, "kind": kind.value}).one_or_none()
    if row is None:
        raise JobNotFound()
    state, error = _effective(row)
    return {
        "job_id": str(ident),
        "job_status": state.value,
        "error_msg": (error or "") if state is JobState.ERROR else "",
    }


def _effective(row: sa.Row[Any]) -> tuple[JobState, str | None]:
    """The status to report: the row's once final, else what its procrastinate job says."""
    state = JobState(row.status)
    if state in (JobState.COMPLETED, JobState.ERROR) or row.procrastinate_job_id is None:
        return state, row.error
    if row.job_status is None:
        return JobState.ERROR, GONE
    if row.job_status == "failed":
        return JobState.ERROR, row.error or row.outcome_error or FAILED
    if row.job_status in ("cancelled", "aborted"):
        return JobState.ERROR, CANCELLED
    if row.job_status == "succeeded":
        return JobState.ERROR, UNRECORDED
    if row.job_status == "todo" and state is JobState.WAITING and not row.attempts:
        return JobState.WAITING, None
    return JobState.PROCESSING, None
