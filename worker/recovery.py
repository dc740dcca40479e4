"""Recovery of jobs whose worker died (SIGKILL, OOM, lost host).

Each worker process beats every ``heartbeat_interval`` seconds, also while it drains. A ``doing``
job whose worker has not beaten for ``stalled_after`` seconds (or whose worker row is gone) is
stalled: the sweep takes its run away (a compare-and-set on the run, so a worker that was only
frozen records nothing when it wakes up) and puts the job back in the queue at once. The lost run
does not count as an attempt of the task's retry policy; it is counted in ``lost_runs``.

A job lost with its worker is suspected of killing it and runs alone next time; a loss while it
ran alone is blamed on it, and at ``WORKER_MAX_LOST_RUNS`` such losses it is failed as poison
(every crash takes the other jobs of its process down with it). A job whose queueing lock a
waiting job holds is failed instead of re-queued (that job does the same work; procrastinate's
unique index would refuse the re-queue).
"""

from __future__ import annotations

import logging

from worker import db
from worker.jobs import state

logger = logging.getLogger(__name__)

#: Worker rows silent for this many stall periods, holding no job, are deleted.
PRUNE_AFTER_STALLS = 10


def sweep(connection: object, *, stalled_after: float, max_lost_runs: int) -> state.SweepReport:
    """Recover every stalled job in the caller's transaction (the caller commits)."""
    report = state.recover(connection, stalled_after=stalled_after, max_blamed=max_lost_runs)
    if not report.claimed:
        return report
    state.prune_dead_workers(connection, older_than=stalled_after * PRUNE_AFTER_STALLS)
    if report.requeued or report.poison or report.superseded or report.aborted:
        logger.warning(
            "worker(s) died: re-queued %d job(s) %s; failed %d as poison %s and %d superseded "
            "by a waiting duplicate %s; aborted %d %s",
            len(report.requeued), report.requeued, len(report.poison), report.poison,
            len(report.superseded), report.superseded, len(report.aborted), report.aborted,
            extra={"action": "stalled_jobs_recovered"},
        )  # fmt: skip
    return report


def sweep_once(stalled_after: float, max_lost_runs: int) -> state.SweepReport:
    """One sweep in a transaction of its own."""
    with db.transaction() as connection:
        return sweep(connection, stalled_after=stalled_after, max_lost_runs=max_lost_runs)
