"""How a worker thread runs one run of a job, and decides how it ended.

:func:`run_job` creates the job's :class:`~worker.jobs.uow.UnitOfWork` and calls the task with
it. When a task that used the database returns, the run ends as ``succeeded`` with its outcome
row *in the task's own last transaction* (``UnitOfWork.commit_success``, fenced on
the run): the task's writes, its result and the job's status commit together, or none of them
does.

Every other end is returned to the runner (``worker.jobs.runner``), which writes it batched with
others, retrying until the database answers: the success of a task that wrote nothing, and every
failure (the task's uncommitted writes rolled back first): ``interrupted`` when the run failed only
because the database connection broke (:func:`worker.jobs.retry.is_interruption`, no retry budget
used), ``retry`` when the task's policy retries it, ``failed`` otherwise.

A run that was taken away (its worker looked dead; see ``worker.recovery``) writes nothing: its
transaction rolls back, and the log says so once.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime
import json
import logging
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa

from worker import app as app_module
from worker import db
from worker.domain.errors import PermanentError
from worker.jobs import retry, state
from worker.jobs.uow import UnitOfWork

if TYPE_CHECKING:
    from procrastinate import jobs

    from worker.jobs.task import CeleryTask

logger = logging.getLogger(__name__)

T = TypeVar("T")

_current_run: contextvars.ContextVar[state.Run | None] = contextvars.ContextVar(
    "current_run", default=None
)


def current_job() -> jobs.Job:
    """The procrastinate job being run in this context (inside a task's function).

    Raises
    ------
    RuntimeError
        Called outside a job (e.g. when a task's function is called directly).
    """
    run = _current_run.get()
    if run is None:
        raise RuntimeError("not running inside a job")
    return run.job


def is_final_attempt() -> bool:
    """Whether a failure of the job being run would be final (its task's policy retries no more).

    Raises
    ------
    RuntimeError
        Called outside a job.
    """
    job = current_job()
    task = app_module.app.tasks[job.task_name]
    policy: retry.Retry = getattr(task, "retry_policy", retry.NO_RETRY)
    return policy.is_final_attempt(job.attempts)


def will_retry(exc: BaseException) -> bool:
    """Whether the job being run will run again after failing with ``exc``: a broken database
    connection (re-run whatever its policy), or a failure its task's policy retries before its
    last attempt. ``False`` outside a job (a task function called directly)."""
    run = _current_run.get()
    if run is None:
        return False
    if retry.is_interruption(exc) and run.interrupted_runs < retry.MAX_INTERRUPTIONS:
        return True
    task = app_module.app.tasks[run.job.task_name]
    policy: retry.Retry = getattr(task, "retry_policy", retry.NO_RETRY)
    return policy.retry_at(exc, run.job.attempts) is not None


def run_job(run: state.Run) -> state.Ending | None:
    """Run one run of a job; return how it ended when that is still to be written (the
    runner writes it, batched with others), ``None`` when it is written already (a success
    committed with the task's own writes) or must not be (the run was fenced off)."""
    from worker.jobs.task import CeleryTask

    task = app_module.app.tasks.get(run.job.task_name)
    if not isinstance(task, CeleryTask):
        error = f"TaskNotFound: no task named {run.job.task_name!r}"
        logger.error("job %s: %s", run.job_id, error, extra={"action": "task_not_found"})
        return state.Ending(run=run, action="failed", error=error)
    clock = time.perf_counter()
    with UnitOfWork(run) as uow:
        try:
            with _running(run, uow):
                result = task.call(uow, run.job.task_kwargs)
                ending = _succeed(task, run, uow, result)
        except state.Fenced:
            uow.rollback()
            log_fenced(run)
            return None
        except Exception as exc:
            uow.rollback()
            return _failed(task, run, exc, time.perf_counter() - clock)
    logger.debug(
        "job %s of %s succeeded in %.3f s",
        run.job_id, run.job.task_name, time.perf_counter() - clock,
        extra={"action": "job_success", "job_id": run.job_id, "task_name": run.job.task_name},
    )  # fmt: skip
    return ending


@contextlib.contextmanager
def _running(run: state.Run, uow: UnitOfWork) -> Iterator[None]:
    token = _current_run.set(run)
    try:
        with db.joined(lambda: uow.session):
            yield
    finally:
        _current_run.reset(token)


def _succeed(task: CeleryTask, run: state.Run, uow: UnitOfWork, result: Any) -> state.Ending | None:
    _check_json(task, result)
    # an outcome row only if there is a value to keep (status, attempts and times are on the
    # job): a task that returns nothing ends by one UPDATE (``tl_succeed_run``, or the batched
    # ``end_runs``' single-statement path)
    record = result is not None
    if uow.used_database:
        # the task's last writes, its outcome and the job's end: one transaction
        uow.commit_success(result=result, record=record)
        return None
    # nothing of the task's to commit with: the runner writes the end, batched with others
    return state.Ending(run=run, action="succeeded", result=result, record=record)


def _failed(task: CeleryTask, run: state.Run, exc: Exception, duration: float) -> state.Ending:
    error = retry.describe(exc)
    job = run.job
    if retry.is_interruption(exc) and run.interrupted_runs < retry.MAX_INTERRUPTIONS:
        delay = min(30.0, 2.0**run.interrupted_runs)
        logger.warning(
            "job %s of %s interrupted by the database (%s): run again in %.0f s, no retry used",
            run.job_id, job.task_name, error, delay,
            extra={"action": "job_interrupted", "job_id": run.job_id},
        )  # fmt: skip
        return state.Ending(
            run=run, action="interrupted", error=error,
            retry_at=_now() + datetime.timedelta(seconds=delay),
        )  # fmt: skip
    retry_at = task.retry_policy.retry_at(exc, job.attempts)
    if retry_at is not None:
        logger.warning(
            "job %s of %s failed after %.3f s, retried at %s: %s",
            run.job_id, job.task_name, duration, retry_at.isoformat(), error,
            extra={"action": "job_error_retry", "job_id": run.job_id},
        )  # fmt: skip
        return state.Ending(run=run, action="retry", error=error, retry_at=retry_at)
    logger.error(
        "job %s of %s failed after %.3f s: %s",
        run.job_id, job.task_name, duration, error,
        exc_info=not isinstance(exc, PermanentError),
        extra={"action": "job_error", "job_id": run.job_id},
    )  # fmt: skip
    return state.Ending(run=run, action="failed", error=error)


def log_fenced(run: state.Run) -> None:
    """Say once that a run was fenced off and recorded nothing."""
    logger.warning(
        "job %s of %s: run %s was taken away (its worker was presumed dead) or the job has "
        "ended already; this run's writes were rolled back and it records nothing",
        run.job_id, run.job.task_name, run.run,
        extra={"action": "job_run_fenced", "job_id": run.job_id, "run": run.run},
    )  # fmt: skip


def _check_json(task: CeleryTask, result: Any) -> None:
    if result is None:
        return
    try:
        json.dumps(result)
    except (TypeError, ValueError):
        raise PermanentError(
            f"{task.name} returned a {type(result).__name__}, which is not a JSON value"
        ) from None


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)
