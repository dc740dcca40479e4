"""How the worker runs one job of a :class:`~worker.jobs.task.CeleryTask`.

The task's function runs inside one ``session_scope`` whose transaction also records the
``SUCCESS`` outcome, keyed by job id: both commit, or neither. A redelivered job (crash after that
commit, stalled-job retry) finds its ``SUCCESS`` and returns the recorded result without running
the function again; an advisory lock on the job id makes a concurrent duplicate run wait for the
first one. A failure rolls the task's writes back and is recorded in its own short transaction,
then re-raised so that procrastinate retries or fails the job.

Long tasks must not do their long work inside this transaction: they commit progress in short
``session_scope(new=True)`` steps on their own rows, and this final transaction stays short.
"""

from __future__ import annotations

import datetime
import json
import logging
import time
from typing import TYPE_CHECKING, Any

from procrastinate import JobContext

from worker import db
from worker.domain.errors import PermanentError
from worker.domain.models import OutcomeStatus
from worker.jobs import outcomes

if TYPE_CHECKING:
    from worker.jobs.task import CeleryTask

logger = logging.getLogger(__name__)


def execute(task: CeleryTask, context: JobContext, **arguments: Any) -> Any:
    """Run one job: the function and its recorded outcome in one transaction."""
    job = context.job
    assert job.id is not None, "a running job has an id"
    started_at = datetime.datetime.now(datetime.UTC)
    clock = time.perf_counter()
    try:
        with db.session_scope(new=True) as session:
            outcomes.lock_job(session, job.id)
            previous = outcomes.load(session, job.id)
            if previous is not None and previous.status is OutcomeStatus.SUCCESS:
                logger.warning(
                    "job %s of %s already succeeded; not running it again",
                    job.id,
                    job.task_name,
                    extra={"action": "job_already_succeeded", "job_id": job.id},
                )
                return previous.result
            result = task.run(**arguments)
            _check_json(task, result)
            outcomes.record(
                session,
                job,
                OutcomeStatus.SUCCESS,
                started_at=started_at,
                duration=time.perf_counter() - clock,
                result=result,
            )
        return result
    except Exception as exc:
        _record_failure(task, job, exc, started_at, time.perf_counter() - clock)
        raise


def _check_json(task: CeleryTask, result: Any) -> None:
    try:
        json.dumps(result)
    except (TypeError, ValueError):
        raise PermanentError(
            f"{task.name} returned a {type(result).__name__}, which is not a JSON value"
        ) from None


def _record_failure(
    task: CeleryTask,
    job: Any,
    exc: Exception,
    started_at: datetime.datetime,
    duration: float,
) -> None:
    strategy = task.retry_strategy
    retried = strategy is not None and strategy.get_retry_exception(exc, job) is not None
    status = OutcomeStatus.RETRY if retried else OutcomeStatus.FAILURE
    try:
        with db.session_scope(new=True) as session:
            outcomes.record(
                session,
                job,
                status,
                started_at=started_at,
                duration=duration,
                error=f"{type(exc).__name__}: {exc}",
            )
    except Exception:
        logger.exception(
            "could not record the failure of job %s",
            job.id,
            extra={"action": "job_outcome_not_recorded", "job_id": job.id},
        )
