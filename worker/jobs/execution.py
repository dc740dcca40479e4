"""How the worker runs one job of a :class:`~worker.jobs.task.CeleryTask`.

The task's function runs inside one ``session_scope`` whose transaction, after the function
returned, records the ``SUCCESS`` outcome (``task_results``) and finishes the procrastinate job
(``doing`` -> ``succeeded``): the task's writes, its result and the job's status commit together,
or none of them does. procrastinate's own finish of that job is then skipped (see
``worker.jobs.worker.TaskLayerWorker``). A task that neither touched the database nor returned a
value has nothing to commit or record beyond what procrastinate keeps (status, attempts, event
timestamps), so procrastinate finishes it as usual.

A redelivered job (its worker died before that commit) runs again from scratch: nothing of the
first run was committed. If a duplicate run did commit first (a job re-queued while still
running), finishing fails here, the transaction rolls back, and the effect is not repeated.

A failure rolls the task's writes back and is recorded in its own short transaction, then
re-raised so that procrastinate retries or fails the job.

Long tasks must not do their long work inside this transaction: they commit progress in short
``session_scope(new=True)`` steps on their own rows, so that this final transaction stays short.
"""

from __future__ import annotations

import contextvars
import datetime
import json
import logging
import time
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from procrastinate import JobContext, jobs

from worker import db
from worker.domain import sql
from worker.domain.errors import PermanentError
from worker.domain.models import OutcomeStatus
from worker.jobs import outcomes, secrets

if TYPE_CHECKING:
    from worker.jobs.task import CeleryTask

logger = logging.getLogger(__name__)

_current_job: contextvars.ContextVar[jobs.Job | None] = contextvars.ContextVar(
    "current_job", default=None
)

#: Key set in the job's ``JobContext.additional_context`` (a dict of its own for every job) once
#: the job was finished in the task's transaction.
FINISHED_KEY = "worker.finished_in_transaction"


class AlreadyFinished(Exception):
    """The job was finished by another run first; this run's writes were rolled back."""


def finished_in_transaction(context: JobContext) -> bool:
    """Whether the job of ``context`` was finished by its task: the worker must not finish it."""
    return bool(context.additional_context.get(FINISHED_KEY))


def execute(task: CeleryTask, context: JobContext, **arguments: Any) -> Any:
    """Run one job: the function, its outcome and the job's status in one transaction."""
    job = context.job
    assert job.id is not None, "a running job has an id"
    started_at = datetime.datetime.now(datetime.UTC)
    clock = time.perf_counter()
    token = _current_job.set(job)
    try:
        with db.session_scope(new=True) as session:
            result = task.run(**arguments)
            secrets.scrub_job_args(session, job.id, job.task_name)
            values = {
                "job_id": job.id,
                "task_name": job.task_name,
                "queue_name": job.queue,
                "result": _as_json(task, result),
                "attempt": job.attempts + 1,
                "started_at": started_at,
                "duration": time.perf_counter() - clock,
            }
            wrote = db.used_database(session)
            if wrote:
                _finish(session, values)
        if not wrote:
            if result is None:
                # Nothing to commit with, nothing to record that procrastinate does not keep
                # (status, attempts, and timings in its events): let it finish the job.
                return None
            with db.autocommit_connection() as connection:
                _finish(connection, values)
    except AlreadyFinished:
        logger.warning(
            "job %s of %s was finished by another run; this run's writes were rolled back",
            job.id,
            job.task_name,
            extra={"action": "job_already_finished", "job_id": job.id},
        )
        context.additional_context[FINISHED_KEY] = True
        return None
    except Exception as exc:
        _record_failure(task, job, exc, started_at, time.perf_counter() - clock)
        raise
    finally:
        _current_job.reset(token)
    context.additional_context[FINISHED_KEY] = True
    return result


def current_job() -> jobs.Job:
    """The procrastinate job being run in this context (inside a task's function).

    Raises
    ------
    RuntimeError
        Called outside a job (e.g. when a task's function is called directly).
    """
    job = _current_job.get()
    if job is None:
        raise RuntimeError("not running inside a job")
    return job


def _finish(session: Any, values: dict[str, Any]) -> None:
    try:
        session.execute(sa.text(sql.queries()["record_success_and_finish"]), values)
    except sa.exc.DBAPIError as exc:
        if 'not in "doing" or "todo" status' in str(exc.orig):
            raise AlreadyFinished(str(values["job_id"])) from exc
        raise


def _as_json(task: CeleryTask, result: Any) -> str | None:
    if result is None:
        return None
    try:
        return json.dumps(result)
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
            if status is OutcomeStatus.FAILURE:
                secrets.scrub_job_args(session, job.id, job.task_name)
    except Exception:
        logger.exception(
            "could not record the failure of job %s",
            job.id,
            extra={"action": "job_outcome_not_recorded", "job_id": job.id},
        )
