"""How a worker thread runs one run of a job, and writes how it ended.

:func:`run_job` creates the job's :class:`~worker.jobs.uow.UnitOfWork` and calls the task with
it. When the task returns, the run ends as ``succeeded`` with its outcome row *in the task's own
last transaction* (``worker.jobs.state.succeed``, fenced on the run): the task's writes, its result
and the job's status commit together, or none of them does. A task that did not use the database
ends in one autocommitted statement instead.

When the task raises, its uncommitted writes roll back and the run ends in a short transaction of
its own: re-queued if the run failed only because the database connection broke
(:func:`worker.jobs.retry.is_interruption`, no retry budget used), re-queued later if the task's
retry policy says so, failed otherwise. Those writes are retried until the database answers, so a
database outage never leaves a job ``doing`` on a live worker.

A run that was taken away (its worker looked dead; see ``worker.recovery``) writes nothing: its
transaction rolls back, and the log says so once.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime
import json
import logging
import threading
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

#: Longest pause between two attempts to write a run's end while the database is unreachable.
MAX_WRITE_PAUSE = 5.0
#: Seconds between two log lines about the same unreachable database.
OUTAGE_LOG_INTERVAL = 30.0


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


def run_job(run: state.Run, stopping: threading.Event | None = None) -> str:
    """Run one run of a job to its end; return how it ended (for logs and tests).

    Parameters
    ----------
    stopping:
        Set when the process stops: a write that waits for the database gives up then (the
        job stays ``doing`` and the recovery sweep of a live worker runs it again).
    """
    from worker.jobs.task import CeleryTask

    task = app_module.app.tasks.get(run.job.task_name)
    if not isinstance(task, CeleryTask):
        return _write(
            run,
            stopping,
            lambda c: state.fail(
                c, run, error=f"TaskNotFound: no task named {run.job.task_name!r}"
            ),
        )
    clock = time.perf_counter()
    with UnitOfWork(run) as uow:
        try:
            with _running(run, uow):
                result = task.call(uow, run.job.task_kwargs)
                _succeed(task, run, uow, result)
        except state.Fenced:
            uow.rollback()
            _log_fenced(run)
            return "fenced"
        except Exception as exc:
            uow.rollback()
            return _end_failed(task, run, exc, stopping, time.perf_counter() - clock)
    logger.info(
        "job %s of %s succeeded in %.3f s",
        run.job_id,
        run.job.task_name,
        time.perf_counter() - clock,
        extra={"action": "job_success", "job_id": run.job_id, "task_name": run.job.task_name},
    )
    return "succeeded"


@contextlib.contextmanager
def _running(run: state.Run, uow: UnitOfWork) -> Iterator[None]:
    token = _current_run.set(run)
    try:
        with db.joined(uow.session):
            yield
    finally:
        _current_run.reset(token)


def _succeed(task: CeleryTask, run: state.Run, uow: UnitOfWork, result: Any) -> None:
    payload = _as_json(task, result)
    if uow.used_database:
        # the task's last writes, its outcome and the job's end: one transaction
        state.succeed(uow.session, run, result=payload, record=True)
        uow.session.commit()
        return
    # nothing of the task's to commit with: one autocommitted statement, and an outcome row
    # only if there is a value to keep (status, attempts and times are on the job)
    with db.autocommit_connection() as connection:
        state.succeed(connection, run, result=payload, record=payload is not None)


def _end_failed(
    task: CeleryTask,
    run: state.Run,
    exc: Exception,
    stopping: threading.Event | None,
    duration: float,
) -> str:
    error = retry.describe(exc)
    job = run.job
    if retry.is_interruption(exc) and run.interrupted_runs < retry.MAX_INTERRUPTIONS:
        delay = min(30.0, 2.0**run.interrupted_runs)
        resume_at = _now() + datetime.timedelta(seconds=delay)
        ending = _write(
            run,
            stopping,
            lambda c: state.requeue(c, run, retry_at=resume_at, error=error, counts=False),
        )
        logger.warning(
            "job %s of %s interrupted by the database (%s): run again in %.0f s, no retry used",
            run.job_id, job.task_name, error, delay,
            extra={"action": "job_interrupted", "job_id": run.job_id},
        )  # fmt: skip
        return ending
    retry_at = task.retry_policy.retry_at(exc, job.attempts)
    if retry_at is not None:
        later = retry_at
        ending = _write(
            run,
            stopping,
            lambda c: state.requeue(c, run, retry_at=later, error=error, counts=True),
        )
        logger.warning(
            "job %s of %s failed after %.3f s, retried at %s: %s",
            run.job_id, job.task_name, duration, retry_at.isoformat(), error,
            extra={"action": "job_error_retry", "job_id": run.job_id},
        )  # fmt: skip
        return ending
    ending = _write(run, stopping, lambda c: state.fail(c, run, error=error))
    logger.error(
        "job %s of %s failed after %.3f s: %s",
        run.job_id, job.task_name, duration, error,
        exc_info=not isinstance(exc, PermanentError),
        extra={"action": "job_error", "job_id": run.job_id},
    )  # fmt: skip
    return ending


def _write(
    run: state.Run, stopping: threading.Event | None, write: Callable[[sa.Connection], str]
) -> str:
    """Apply ``write`` in its own transaction, again and again while the database is
    unreachable (until ``stopping``); a fenced run writes nothing."""
    pause = 0.5
    last_log = 0.0
    while True:
        try:
            with db.transaction() as connection:
                return write(connection)
        except state.Fenced:
            _log_fenced(run)
            return "fenced"
        except Exception as exc:
            if not retry.is_interruption(exc):
                raise
            if stopping is not None and stopping.is_set():
                logger.warning(
                    "job %s: could not record how its run ended (%s) before stopping; the "
                    "recovery sweep will run it again",
                    run.job_id, retry.describe(exc),
                    extra={"action": "job_end_not_written", "job_id": run.job_id},
                )  # fmt: skip
                return "unwritten"
            if time.monotonic() - last_log >= OUTAGE_LOG_INTERVAL:
                last_log = time.monotonic()
                logger.warning(
                    "job %s: database unreachable (%s); will record how its run ended once it "
                    "answers",
                    run.job_id, retry.describe(exc),
                    extra={"action": "job_end_waiting_for_database", "job_id": run.job_id},
                )  # fmt: skip
            time.sleep(pause)
            pause = min(MAX_WRITE_PAUSE, pause * 2)


def _log_fenced(run: state.Run) -> None:
    logger.warning(
        "job %s of %s: run %s was taken away (its worker was presumed dead) or the job has "
        "ended already; this run's writes were rolled back and it records nothing",
        run.job_id, run.job.task_name, run.run,
        extra={"action": "job_run_fenced", "job_id": run.job_id, "run": run.run},
    )  # fmt: skip


def _as_json(task: CeleryTask, result: Any) -> str | None:
    if result is None:
        return None
    try:
        return json.dumps(result)
    except (TypeError, ValueError):
        raise PermanentError(
            f"{task.name} returned a {type(result).__name__}, which is not a JSON value"
        ) from None


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)
