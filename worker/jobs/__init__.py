"""The task layer's public API, Celery-shaped: ``task``, ``AsyncResult``, ``group``, ``Retry``.

``from worker.jobs import AsyncResult, group`` replaces ``celery.result.AsyncResult`` and
``celery.group`` in ported Dify code.
"""

from __future__ import annotations

from procrastinate.exceptions import AlreadyEnqueued

from worker.jobs.execution import current_job, is_final_attempt, will_retry
from worker.jobs.results import (
    FAILURE,
    PENDING,
    READY_STATES,
    RETRY,
    REVOKED,
    STARTED,
    SUCCESS,
    AsyncResult,
    GroupResult,
    ResultTimeout,
    TaskFailed,
    UnknownJob,
    group,
)
from worker.jobs.retry import NO_RETRY, Retry
from worker.jobs.task import CeleryTask, InvalidTaskArguments, Signature, task

__all__ = [
    "FAILURE",
    "NO_RETRY",
    "PENDING",
    "READY_STATES",
    "RETRY",
    "REVOKED",
    "STARTED",
    "SUCCESS",
    "AlreadyEnqueued",
    "AsyncResult",
    "CeleryTask",
    "GroupResult",
    "InvalidTaskArguments",
    "ResultTimeout",
    "Retry",
    "Signature",
    "TaskFailed",
    "UnknownJob",
    "current_job",
    "group",
    "is_final_attempt",
    "task",
    "will_retry",
]
