"""One firing of a periodic job: its due tick claimed and its job deferred, in one transaction.

The tick row (``scheduler_ticks``, primary key ``(job_name, tick_at)``) is inserted in the
transaction that defers the job: a second scheduler computing the same tick (a second leader
during a failover, a leader that lost its lock unnoticed) inserts nothing and defers nothing, and
a rolled-back firing leaves neither. Firings of one job also take a transaction-scoped advisory
lock, so two leaders do not even compute the same catch-up twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import orm

from worker.domain import sql
from worker.domain.models.scheduler import TickOutcome
from worker.jobs import AlreadyEnqueued
from worker.maintenance import ticks
from worker.maintenance.schedule import PeriodicJob

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class Firing:
    """What one firing did."""

    #: The tick claimed here (``None``: nothing was due, or another process had claimed it).
    tick_at: datetime | None = None
    #: ``deferred`` or ``already_queued`` for the claimed tick.
    outcome: TickOutcome | None = None
    job_id: int | None = None
    #: Missed ticks recorded, by outcome.
    missed: int = 0


def fire(session: orm.Session, job: PeriodicJob, *, now: datetime) -> Firing:
    """Record the ticks of ``job`` due at ``now`` and defer its job for the one that fires, in
    ``session``'s transaction (the caller commits).

    Parameters
    ----------
    now:
        The time of this firing (UTC); the ticks are the trigger's own times up to it.
    """
    q = sql.queries()
    session.execute(sa.text(q["scheduler_lock_job"]), {"job_name": job.name})
    last = session.execute(
        sa.text(q["scheduler_last_tick"]), {"job_name": job.name}
    ).scalar_one_or_none()
    due = ticks.plan(job.trigger, job.policy, last=last, now=now)
    _record_missed(session, job, due)
    if due.fire is None:
        return Firing(missed=len(due.missed))
    claimed = session.execute(
        sa.text(q["scheduler_claim_tick"]), {"job_name": job.name, "tick_at": due.fire}
    ).first()
    if claimed is None:
        return Firing(missed=len(due.missed))
    outcome, job_id = _defer(session, job, due.fire)
    session.execute(
        sa.text(q["scheduler_settle_tick"]),
        {"job_name": job.name, "tick_at": due.fire, "outcome": outcome, "job_id": job_id},
    )
    return Firing(tick_at=due.fire, outcome=outcome, job_id=job_id, missed=len(due.missed))


def _record_missed(session: orm.Session, job: PeriodicJob, due: ticks.Plan) -> None:
    if due.truncated:
        logger.warning(
            "periodic job %s missed ticks older than %s that are not recorded (beyond %s or "
            "%d ticks)",
            job.name, due.missed[0][0] if due.missed else due.fire, ticks.HORIZON,
            ticks.MAX_MISSED_TICKS,
            extra={"action": "scheduler_ticks_truncated", "periodic_job": job.name},
        )  # fmt: skip
    for outcome in TickOutcome:
        missed = [tick for tick, became in due.missed if became is outcome]
        if not missed:
            continue
        session.execute(
            sa.text(sql.queries()["scheduler_record_missed"]),
            {"job_name": job.name, "ticks": missed, "outcome": outcome},
        )
        logger.info(
            "periodic job %s: %d missed tick(s) from %s to %s recorded %s",
            job.name, len(missed), missed[0], missed[-1], outcome,
            extra={"action": "scheduler_ticks_missed", "periodic_job": job.name},
        )  # fmt: skip


def _defer(
    session: orm.Session, job: PeriodicJob, tick_at: datetime
) -> tuple[TickOutcome, int | None]:
    try:
        result = job.task.apply_async(
            kwargs=dict(job.kwargs), queueing_lock=job.queueing_lock, session=session
        )
    except AlreadyEnqueued:
        logger.info(
            "periodic job %s: tick %s not deferred, the job of an earlier tick still waits",
            job.name, tick_at,
            extra={"action": "scheduler_already_queued", "periodic_job": job.name},
        )  # fmt: skip
        return TickOutcome.ALREADY_QUEUED, None
    logger.info(
        "periodic job %s: tick %s deferred job %s",
        job.name, tick_at, result.id,
        extra={"action": "scheduler_deferred", "periodic_job": job.name, "job_id": result.id},
    )  # fmt: skip
    return TickOutcome.DEFERRED, int(result.id)
