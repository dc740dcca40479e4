"""The procrastinate worker of this task layer.

Two changes to how procrastinate persists a job's end:

- a job that :mod:`worker.jobs.execution` already finished inside the task's own transaction is
  not finished a second time (procrastinate's ``finish_job`` would fail on it);
- a retry that procrastinate cannot make because another job with the same queueing lock is
  already waiting (its unique index refuses the ``doing -> todo`` move; procrastinate #1446 then
  leaves the job ``doing`` forever) fails the job instead, with the reason recorded: the waiting
  job does the same work.

Both override ``Worker._persist_job_status``, a private method of procrastinate 3.10.0, which is
pinned; ``tests/unit/test_worker_override.py`` fails if it changes.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import procrastinate.worker
from procrastinate import exceptions, jobs

from worker import db
from worker.domain.models import OutcomeStatus, TaskResult
from worker.jobs.execution import finished_in_transaction

logger = logging.getLogger(__name__)

#: procrastinate's unique index: at most one waiting job per queueing lock.
QUEUEING_LOCK_INDEX = "procrastinate_jobs_queueing_lock_idx_v1"


class TaskLayerWorker(procrastinate.worker.Worker):
    """A procrastinate ``Worker`` with the two changes above."""

    async def _persist_job_status(
        self,
        job: jobs.Job,
        status: jobs.Status,
        retry_decision: Any,
        context: Any,
        job_result: Any,
    ) -> None:
        if finished_in_transaction(context):
            if job.id is not None:
                self._job_ids_to_abort.pop(job.id, None)
            return
        try:
            await super()._persist_job_status(
                job=job,
                status=status,
                retry_decision=retry_decision,
                context=context,
                job_result=job_result,
            )
        except exceptions.UniqueViolation as exc:
            if retry_decision is None or exc.constraint_name != QUEUEING_LOCK_INDEX:
                raise
            await self._fail_superseded(job)

    async def _fail_superseded(self, job: jobs.Job) -> None:
        assert job.id is not None
        await self.app.job_manager.finish_job(job=job, status=jobs.Status.FAILED, delete_job=False)
        self._job_ids_to_abort.pop(job.id, None)
        reason = (
            f"Superseded: not retried, another job with queueing lock {job.queueing_lock!r} "
            "is already waiting and does this work"
        )
        await asyncio.to_thread(_note_superseded, job.id, reason)
        logger.warning(
            "job %s failed instead of retried: %s",
            job.id,
            reason,
            extra={"action": "retry_superseded", "job_id": job.id},
        )


def _note_superseded(job_id: int, reason: str) -> None:
    with db.session_scope(new=True) as session:
        outcome = session.get(TaskResult, job_id)
        if outcome is not None:
            outcome.status = OutcomeStatus.FAILURE
            outcome.error = f"{outcome.error}; {reason}" if outcome.error else reason
