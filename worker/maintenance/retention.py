"""Retention: finished jobs, their events and outcomes, mail deliveries and scheduler ticks.

Run hourly by the scheduler (``maintenance.prune_finished_jobs``) and on demand by
``manage.py jobs prune [--dry-run]``, the same code. Every delete is a batch of at most
``batch_size`` rows in a short transaction of its own (a step of the caller's unit of work):

1. finished jobs past their cutoff (``WORKER_RETAIN_SUCCEEDED`` for succeeded, cancelled and
   aborted jobs, ``WORKER_RETAIN_FAILED`` for failed ones; by their end event), by id: for each
   batch, their events first, then the jobs (a job retried and run meanwhile is left), then
   their outcomes (``task_results``), never before their jobs;
2. outcomes whose job is gone and whose cutoff passed (an interrupted prune leaves some);
3. mail deliveries older than ``WORKER_RETAIN_MAIL_DELIVERIES`` whose job neither waits nor runs;
4. finished job statuses (``job_statuses``, polled by Dify's console), on the jobs' cutoffs;
5. scheduler ticks older than 7 days, but each periodic job's latest.

A waiting or running job is never deleted. A dry run walks the same batches and counts.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from worker.config import Settings
from worker.domain import sql
from worker.domain.uow import UnitOfWork
from worker.jobs import state

logger = logging.getLogger(__name__)

#: Rows deleted per transaction, at most.
BATCH_SIZE = 1000
#: Scheduler ticks are kept this long.
RETAIN_SCHEDULER_TICKS = timedelta(days=7)

JOBS = "procrastinate_jobs"
EVENTS = "procrastinate_events"
OUTCOMES = "task_results"
MAIL = "mail_deliveries"
STATUSES = "job_statuses"
TICKS = "scheduler_ticks"
#: Tables in the order they are pruned.
TABLES = (JOBS, EVENTS, OUTCOMES, MAIL, STATUSES, TICKS)

#: Called after each batch: table, rows in the batch, rows so far in that table.
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True, kw_only=True)
class RetentionPolicy:
    """How long finished work is kept."""

    finished: timedelta
    failed: timedelta
    mail_deliveries: timedelta
    scheduler_ticks: timedelta = RETAIN_SCHEDULER_TICKS
    batch_size: int = BATCH_SIZE

    @classmethod
    def from_settings(cls, settings: Settings) -> RetentionPolicy:
        """The policy of ``WORKER_RETAIN_*``."""
        return cls(
            finished=timedelta(seconds=settings.retain_succeeded),
            failed=timedelta(seconds=settings.retain_failed),
            mail_deliveries=timedelta(seconds=settings.retain_mail_deliveries),
        )


@dataclass(kw_only=True)
class PruneReport:
    """What one prune deleted (or, in a dry run, would delete), by table."""

    dry_run: bool
    rows: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TABLES, 0))
    #: Transactions that deleted something, and the most rows one of them deleted.
    batches: int = 0
    largest_batch: int = 0
    seconds: float = 0.0


class _Pruner:
    def __init__(
        self, uow: UnitOfWork, policy: RetentionPolicy, now: datetime, dry_run: bool,
        progress: Progress | None,
    ) -> None:  # fmt: skip
        self.uow = uow
        self.policy = policy
        self.limit = policy.batch_size
        self.cutoffs = state.Cutoffs(
            finished_before=now - policy.finished, failed_before=now - policy.failed
        )
        self.now = now
        self.report = PruneReport(dry_run=dry_run)
        self._progress = progress

    def counted(self, table: str, rows: int, *, batch: bool = True) -> None:
        if rows <= 0:
            return
        self.report.rows[table] += rows
        if batch and not self.report.dry_run:
            self.report.batches += 1
            self.report.largest_batch = max(self.report.largest_batch, rows)
        if self._progress is not None:
            self._progress(table, rows, self.report.rows[table])

    def jobs(self) -> None:
        after = 0
        while True:
            with self.uow.step() as session:
                batch = state.prunable_jobs(session, self.cutoffs, after=after, limit=self.limit)
            if not batch:
                return
            after = batch[-1][0]
            if self.report.dry_run:
                self._count_job_batch(batch)
            else:
                self._delete_job_batch(batch)

    def _count_job_batch(self, batch: list[tuple[int, int]]) -> None:
        ids = {"ids": [job_id for job_id, _ in batch]}
        with self.uow.step() as session:
            events = session.execute(_query("retention_count_job_events"), ids).scalar_one()
            outcomes = session.execute(_query("retention_count_outcomes"), ids).scalar_one()
        self.counted(JOBS, len(batch))
        self.counted(EVENTS, events)
        self.counted(OUTCOMES, outcomes)

    def _delete_job_batch(self, batch: list[tuple[int, int]]) -> None:
        parameters = {
            "ids": [job_id for job_id, _ in batch],
            "runs": [runs for _, runs in batch],
            "limit": self.limit,
        }
        while True:
            with self.uow.step() as session:
                events = len(
                    session.execute(_query("retention_delete_job_events"), parameters).all()
                )
            self.counted(EVENTS, events)
            if events < self.limit:
                break
        with self.uow.step() as session:
            deleted = state.delete_jobs(session, batch)
        self.counted(JOBS, len(deleted))
        with self.uow.step() as session:
            outcomes = state.delete_outcomes(session, deleted) if deleted else 0
        self.counted(OUTCOMES, outcomes)

    def orphan_outcomes(self) -> None:
        after = 0
        while True:
            with self.uow.step() as session:
                job_ids = state.orphan_outcomes(
                    session, self.cutoffs, after=after, limit=self.limit
                )
                if job_ids and not self.report.dry_run:
                    self.counted(OUTCOMES, state.delete_outcomes(session, job_ids))
            if not job_ids:
                return
            if self.report.dry_run:
                self.counted(OUTCOMES, len(job_ids), batch=False)
            after = job_ids[-1]

    def mail_deliveries(self) -> None:
        before = self.now - self.policy.mail_deliveries
        if self.report.dry_run:
            self._count(MAIL, "retention_count_mail_deliveries", before)
            return
        after_at, after_id = datetime.min.replace(tzinfo=UTC), uuid.UUID(int=0)
        while True:
            with self.uow.step() as session:
                rows = session.execute(
                    _query("retention_delete_mail_deliveries"),
                    {"before": before, "after_at": after_at, "after_id": after_id,
                     "limit": self.limit},
                ).all()  # fmt: skip
            self.counted(MAIL, len(rows))
            if len(rows) < self.limit:
                return
            after_at, after_id = max((row.created_at, row.id) for row in rows)

    def job_statuses(self) -> None:
        cutoffs = {
            "finished_before": self.cutoffs.finished_before,
            "failed_before": self.cutoffs.failed_before,
        }
        if self.report.dry_run:
            with self.uow.step() as session:
                count = session.execute(_query("retention_count_job_statuses"), cutoffs)
                self.counted(STATUSES, count.scalar_one())
            return
        while True:
            with self.uow.step() as session:
                rows = session.execute(
                    _query("retention_delete_job_statuses"), {**cutoffs, "limit": self.limit}
                ).all()
            self.counted(STATUSES, len(rows))
            if len(rows) < self.limit:
                return

    def scheduler_ticks(self) -> None:
        before = self.now - self.policy.scheduler_ticks
        if self.report.dry_run:
            self._count(TICKS, "retention_count_scheduler_ticks", before)
            return
        while True:
            with self.uow.step() as session:
                rows = session.execute(
                    _query("retention_delete_scheduler_ticks"),
                    {"before": before, "limit": self.limit},
                ).all()
            self.counted(TICKS, len(rows))
            if len(rows) < self.limit:
                return

    def _count(self, table: str, query: str, before: datetime) -> None:
        with self.uow.step() as session:
            self.counted(table, session.execute(_query(query), {"before": before}).scalar_one())


def prune(
    uow: UnitOfWork,
    policy: RetentionPolicy,
    *,
    now: datetime | None = None,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> PruneReport:
    """Delete what ``policy`` no longer keeps, in batches (see the module's docstring).

    Parameters
    ----------
    uow:
        Each batch is a step of it (committed on its own); nothing is left for its final
        transaction.
    now:
        The time the cutoffs count back from (default: now).
    dry_run:
        Count what would be deleted, delete nothing.
    progress:
        Called after each batch with the table, the batch's rows and the table's total so far.
    """
    started = time.monotonic()
    pruner = _Pruner(uow, policy, now or datetime.now(UTC), dry_run, progress)
    pruner.jobs()
    pruner.orphan_outcomes()
    pruner.mail_deliveries()
    pruner.job_statuses()
    pruner.scheduler_ticks()
    report = pruner.report
    report.seconds = time.monotonic() - started
    logger.info(
        "retention%s: %s in %d batch(es) of at most %d rows, %.2f s",
        " (dry run)" if dry_run else "",
        ", ".join(f"{table} {rows}" for table, rows in report.rows.items()),
        report.batches, report.largest_batch, report.seconds,
        extra={"action": "retention_pruned", "dry_run": dry_run},
    )  # fmt: skip
    return report


def _query(name: str) -> sa.TextClause:
    return sa.text(sql.queries()[name])
