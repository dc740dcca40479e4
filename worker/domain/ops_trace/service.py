"""Delivering one trace payload, with its outcome in ``trace_deliveries``.

1. A delivery already final (``sent``, ``failed``, ``skipped``: a job run again after its end
   committed) is the answer: nothing is sent, the payload is deleted if still there.
2. The payload is read and the app's provider resolved from its rows (a short step); tracing
   off or the app gone: ``skipped``, committed with the job's outcome.
3. The attempt is recorded ``pending`` (attempts + 1) in a short step, then the events are sent
   with no transaction open; the delivery is ``sent`` only when the provider accepted them, in
   the job's final transaction.
4. A refusal that the job retries leaves ``pending`` with the error; a final one records
   ``failed`` with the provider's message, then raises, so the job fails (or retries) visibly.

The payload file is deleted only after the transaction recording a final outcome has committed
(``uow.after_commit``); a crash before that leaves the file, which the job's next run (or the
payload sweep, once the outcome is final) deletes. The events carry ids derived from the file
id: a payload sent twice is one trace in Langfuse.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy import orm
from sqlalchemy.dialects.postgresql import insert

from worker.domain.errors import DomainError, PermanentError
from worker.domain.models import FINAL_TRACE_STATUSES, TraceDelivery, TraceDeliveryStatus
from worker.domain.ops_trace import events, payload, provider
from worker.domain.ops_trace.langfuse import LangfuseTarget
from worker.domain.ports import Storage
from worker.domain.uow import UnitOfWork

logger = logging.getLogger(__name__)

#: Whether the job will run again after a failure (``worker.jobs.will_retry`` in a job).
Retrying = Callable[[BaseException], bool]


class PayloadMissing(PermanentError):
    """The trace payload file is not in storage."""


class Sender(Protocol):
    """A tracing provider's client."""

    def send(self, target: LangfuseTarget, events: Sequence[events.Event]) -> int:
        """Deliver the events; return how many were accepted (raise if any was not)."""
        ...


class AfterCommit(Protocol):
    """A unit of work that can act once a transaction is durable (``worker.jobs.uow``)."""

    def after_commit(self, callback: Callable[[], None]) -> None: ...


class TraceUnitOfWork(UnitOfWork, AfterCommit, Protocol):
    """What delivering a trace needs of the job's unit of work."""


def _never(exc: BaseException) -> bool:
    return False


def process(
    uow: TraceUnitOfWork,
    storage: Storage,
    sender: Sender,
    file_info: Mapping[str, Any],
    *,
    job_id: int | None = None,
    retrying: Retrying = _never,
) -> dict[str, Any]:
    """Deliver the payload ``file_info`` names (see the module docstring).

    Raises
    ------
    InvalidTraceFile
        ``file_info`` names no payload (nothing recorded).
    PayloadMissing, InvalidPayload, TracingMisconfigured, ProviderRefused, PermanentError
        After recording the delivery ``failed``.
    TransientError
        The provider could not be reached or asked to come back later (recorded ``pending``
        while the job retries, ``failed`` on its last attempt).
    """
    info = payload.FileInfo.parse(file_info)
    with uow.step() as session:
        done = session.get(TraceDelivery, info.file_id)
        final = done.status if done is not None and done.status in FINAL_TRACE_STATUSES else None
    if final is not None:
        storage.delete(info.key)
        return {"file_id": info.file_id, "status": final.value, "already": True}
    try:
        return _deliver(uow, storage, sender, info, job_id)
    except DomainError as exc:
        _record_refusal(uow, storage, info, exc, job_id=job_id, retried=retrying(exc))
        raise


def _deliver(
    uow: TraceUnitOfWork,
    storage: Storage,
    sender: Sender,
    info: payload.FileInfo,
    job_id: int | None,
) -> dict[str, Any]:
    if not storage.exists(info.key):
        raise PayloadMissing(f"trace payload {info.key} is missing from storage")
    loaded = payload.parse(storage.load(info.key), info)
    with uow.step() as session:
        resolved = provider.resolve(session, info.app_id)
    if resolved.target is None:
        _record(uow.session, info, TraceDeliveryStatus.SKIPPED, job_id=job_id,
                provider=resolved.provider, error=resolved.skipped)  # fmt: skip
        uow.after_commit(lambda: _delete(storage, info))
        logger.info(
            "trace %s of app %s skipped: %s", info.file_id, info.app_id, resolved.skipped,
            extra={"action": "trace_skipped", "file_id": info.file_id},
        )  # fmt: skip
        return {"file_id": info.file_id, "status": "skipped", "reason": resolved.skipped}
    batch = events.build(info.file_id, loaded)
    with uow.step() as session:
        _record(session, info, TraceDeliveryStatus.PENDING, job_id=job_id,
                provider=resolved.provider, events=len(batch), attempt=True)  # fmt: skip
    sender.send(resolved.target, batch)
    _record(uow.session, info, TraceDeliveryStatus.SENT, job_id=job_id,
            provider=resolved.provider, events=len(batch))  # fmt: skip
    uow.after_commit(lambda: _delete(storage, info))
    logger.info(
        "trace %s of app %s: %d event(s) accepted by %s",
        info.file_id, info.app_id, len(batch), resolved.provider,
        extra={"action": "trace_sent", "file_id": info.file_id},
    )  # fmt: skip
    return {"file_id": info.file_id, "status": "sent", "events": len(batch),
            "provider": resolved.provider}  # fmt: skip


def _record_refusal(
    uow: TraceUnitOfWork,
    storage: Storage,
    info: payload.FileInfo,
    exc: DomainError,
    *,
    job_id: int | None,
    retried: bool,
) -> None:
    status = TraceDeliveryStatus.PENDING if retried else TraceDeliveryStatus.FAILED
    uow.rollback()
    if not retried:
        uow.after_commit(lambda: _delete(storage, info))
    with uow.step() as session:
        _record(session, info, status, job_id=job_id, error=str(exc))
    logger.warning(
        "trace %s of app %s not delivered (%s): %s",
        info.file_id, info.app_id, "retrying" if retried else "failed", exc,
        extra={"action": "trace_refused", "file_id": info.file_id, "status": status.value},
    )  # fmt: skip


def _record(
    session: orm.Session,
    info: payload.FileInfo,
    status: TraceDeliveryStatus,
    *,
    job_id: int | None,
    provider: str | None = None,
    events: int | None = None,
    error: str | None = None,
    attempt: bool = False,
) -> None:
    values: dict[str, Any] = {"status": status, "error": error, "job_id": job_id}
    if provider is not None:
        values["provider"] = provider
    if events is not None:
        values["events"] = events
    if status is TraceDeliveryStatus.SENT:
        values["sent_at"] = datetime.now(UTC)
    values["updated_at"] = datetime.now(UTC)
    statement = insert(TraceDelivery).values(
        file_id=info.file_id, app_id=info.app_id, attempts=int(attempt), **values
    )
    if attempt:
        values["attempts"] = TraceDelivery.attempts + 1
    session.execute(
        statement.on_conflict_do_update(index_elements=[TraceDelivery.file_id], set_=values)
    )


def _delete(storage: Storage, info: payload.FileInfo) -> None:
    storage.delete(info.key)


def failed_count(session: orm.Session, app_id: Any) -> int:
    """Dify's ``FAILED_OPS_TRACE_{app_id}`` counter, as a query."""
    return int(
        session.scalar(
            sa.select(sa.func.count()).where(
                TraceDelivery.app_id == app_id,
                TraceDelivery.status == TraceDeliveryStatus.FAILED,
            )
        )
        or 0
    )
