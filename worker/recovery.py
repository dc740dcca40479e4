"""Recovery of jobs whose worker died (SIGKILL, OOM, lost host).

procrastinate marks a fetched job ``doing`` and records which worker holds it; each worker beats
every ``heartbeat_interval`` seconds. A ``doing`` job whose worker has not beaten for
``stalled_after`` seconds (or whose worker row is gone) is stalled: the sweep puts it back in the
queue. Workers keep beating while they drain on SIGTERM (see ``worker.server``), so a job still
running on a live worker is never taken for stalled and started twice.

procrastinate cannot move a job back to ``todo`` while another job with the same queueing lock
waits (its unique index refuses; issue #1446 leaves such jobs ``doing`` forever). The waiting job
will do the same work, so the stalled one is failed instead, with the reason recorded. A job
whose worker died during each of its last ``MAX_RUNS`` runs is failed too: it may be what kills
its workers, and every crash takes the other jobs of that process down with it.
"""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy import orm

from worker.domain import sql
from worker.domain.models import OutcomeStatus, TaskResult
from worker.jobs import outcomes

logger = logging.getLogger(__name__)

#: Runs after which a job whose worker keeps dying is failed instead of re-queued.
MAX_RUNS = 5


@dataclass(kw_only=True)
class SweepReport:
    """What one sweep did."""

    claimed: bool = True
    retried: list[int] = field(default_factory=list)
    superseded: dict[int, int] = field(default_factory=dict)
    abandoned: list[int] = field(default_factory=list)


def sweep(session: orm.Session, *, stalled_after: float) -> SweepReport:
    """Re-queue every stalled job; the caller commits.

    Parameters
    ----------
    session:
        An open session; the sweep runs in its transaction.
    stalled_after:
        Seconds without a heartbeat after which a worker is presumed dead.
    """
    q = sql.queries()
    if not session.execute(sa.text(q["claim_recovery_sweep"])).scalar_one():
        return SweepReport(claimed=False)
    report = SweepReport()
    stalled = session.execute(
        sa.text(q["select_stalled_jobs"]), {"stalled_after": stalled_after}
    ).all()
    for job in stalled:
        waiting = None
        if job.queueing_lock is not None:
            waiting = session.execute(
                sa.text(q["waiting_job_with_queueing_lock"]),
                {"queueing_lock": job.queueing_lock},
            ).scalar_one_or_none()
        if job.attempts + 1 >= MAX_RUNS:
            _give_up(
                session,
                job,
                f"WorkerLost: its worker died during each of {job.attempts + 1} runs; "
                "not retried again (a job that kills its worker would take the others with it)",
            )
            report.abandoned.append(job.id)
        elif waiting is None:
            session.execute(sa.text(q["retry_stalled_job"]), {"job_id": job.id})
            report.retried.append(job.id)
        else:
            _give_up(
                session,
                job,
                f"WorkerLost: the worker died; job {waiting} already waits with queueing lock "
                f"{job.queueing_lock!r} and does this work instead",
            )
            report.superseded[job.id] = waiting
    if stalled:
        logger.warning(
            "re-queued %d stalled job(s) %s; failed %d superseded by waiting duplicates %s "
            "and %d that lost their worker too often %s",
            len(report.retried),
            report.retried,
            len(report.superseded),
            report.superseded,
            len(report.abandoned),
            report.abandoned,
            extra={"action": "stalled_jobs_recovered"},
        )
    return report


def _give_up(session: orm.Session, job: sa.Row[tuple[object, ...]], reason: str) -> None:
    """Fail a stalled job for good, recording ``reason`` unless an outcome exists already."""
    session.execute(sa.text(sql.queries()["fail_job"]), {"job_id": job.id})
    if session.get(TaskResult, job.id) is not None:
        return  # an outcome is already recorded (e.g. SUCCESS committed before the crash)
    now = datetime.datetime.now(datetime.UTC)
    outcomes.record_row(
        session,
        job_id=job.id,
        task_name=job.task_name,
        queue_name=job.queue_name,
        status=OutcomeStatus.FAILURE,
        attempt=job.attempts + 1,
        started_at=now,
        duration=0.0,
        error=reason,
    )
