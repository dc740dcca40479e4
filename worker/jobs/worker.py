"""The procrastinate worker of this task layer.

Its only change: a job that :mod:`worker.jobs.execution` already finished inside the task's own
transaction is not finished a second time (procrastinate's ``finish_job`` would fail on it). This
overrides ``Worker._persist_job_status``, a private method of procrastinate 3.10.0, which is pinned;
``tests/unit/test_worker_override.py`` fails if its signature changes.
"""

from __future__ import annotations

from typing import Any

import procrastinate.worker
from procrastinate import jobs

from worker.jobs.execution import finished_in_transaction


class TaskLayerWorker(procrastinate.worker.Worker):
    """A procrastinate ``Worker`` that skips finishing jobs our tasks finished themselves."""

    async def _persist_job_status(
        self,
        job: jobs.Job,
        status: jobs.Status,
        retry_decision: Any,
        context: Any,
        job_result: Any,
    ) -> None:
        if job.id is not None and finished_in_transaction(job.id):
            self._job_ids_to_abort.pop(job.id, None)
            return
        await super()._persist_job_status(
            job=job,
            status=status,
            retry_decision=retry_decision,
            context=context,
            job_result=job_result,
        )
