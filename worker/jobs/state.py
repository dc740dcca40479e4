"""The only writer of job status and outcomes.

Every change of a job's state goes through here: taking jobs (a new *run*), ending a run
(succeeded, failed, aborted), putting it back in the queue (a retry, or a re-run after a broken
database connection), taking runs away from dead workers (recovery), and the operator's cancel and
retry. The outcome row (``task_results``) is written by the same statement as the status.

A run is fenced by ``(job id, runs)``: ``runs`` grows by one at each fetch, and every write about a
job made on behalf of a run is a compare-and-set on ``status = 'doing' AND runs = <that run>``. The
recovery sweep's re-queue is one too. A run that was taken away (its worker looked dead, the job
was re-queued and maybe run again elsewhere) therefore writes nothing: :class:`Fenced` is raised
and its transaction rolls back.
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, LiteralString

import sqlalchemy as sa
from procrastinate import jobs

from worker.domain import sql
from worker.jobs import secrets

#: SQLAlchemy's ``:name`` placeholders, as psycopg's ``%(name)s``.
_PLACEHOLDER = re.compile(r"(?<![:\w]):([a-z_]+)\b")


class Fenced(Exception):
    """The job no longer belongs to this run: it was taken away, or has ended already."""

    def __init__(self, run: Run) -> None:
        super().__init__(f"job {run.job_id} no longer belongs to its run {run.run}")
        self.run = run


@dataclass(frozen=True, kw_only=True)
class Run:
    """One run of a job: the job as fetched, and the fence of every write about it."""

    job: jobs.Job
    #: The job's ``runs`` when this run took it: the fence.
    run: int
    #: This run was taken alone (the job is suspected of killing its workers).
    alone: bool = False
    #: Earlier runs of the job lost to dead workers.
    lost_runs: int = 0
    #: Earlier runs of the job ended by a broken database connection.
    interrupted_runs: int = 0
    #: The run was fetched at this (monotonic) time.
    fetched_at: float = 0.0

    @property
    def job_id(self) -> int:
        assert self.job.id is not None
        return self.job.id


@dataclass(kw_only=True)
class SweepReport:
    """What one recovery sweep did: job ids by verdict."""

    claimed: bool = True
    requeued: list[int] = field(default_factory=list)
    poison: list[int] = field(default_factory=list)
    superseded: list[int] = field(default_factory=list)
    aborted: list[int] = field(default_factory=list)


def psycopg_query(name: str) -> LiteralString:
    """A named query with psycopg placeholders (for the runner's own async connections)."""
    text = sql.queries()[name]
    return _PLACEHOLDER.sub(r"%(\1)s", text)


def run_from_row(row: Mapping[str, Any], fetched_at: float) -> Run:
    """The :class:`Run` of a row returned by ``fetch_jobs``."""
    return Run(
        job=jobs.Job.from_row(dict(row)),
        run=row["runs"],
        alone=row["run_alone"],
        lost_runs=row["lost_runs"],
        interrupted_runs=row["interrupted_runs"],
        fetched_at=fetched_at,
    )


def fetch_parameters(
    *, queues: list[str], worker_id: int, limit: int, idle: bool, suspect_wait: float
) -> dict[str, Any]:
    """Parameters of ``fetch_jobs`` (run by the runner on its own async connection)."""
    return {
        "queues": queues,
        "worker_id": worker_id,
        "limit": limit,
        "idle": idle,
        "suspect_wait": suspect_wait,
    }


def check(connection: sa.Connection | Any, run: Run) -> None:
    """Raise :class:`Fenced` unless the job still belongs to ``run``; share-lock it until the
    caller's transaction ends (a progress commit cannot land after the run was taken away)."""
    found = connection.execute(
        sa.text(sql.queries()["check_run"]), {"job_id": run.job_id, "run": run.run}
    ).first()
    if found is None:
        raise Fenced(run)


def succeed(connection: sa.Connection | Any, run: Run, *, result: str | None, record: bool) -> None:
    """End ``run`` as succeeded (in the caller's transaction: the task's own, when it wrote).

    Parameters
    ----------
    result:
        The task's return value as JSON text (``None`` for no value).
    record:
        Write the outcome row (skipped when there is nothing procrastinate does not keep).

    Raises
    ------
    Fenced
        The job no longer belongs to this run; nothing was written.
    """
    _end(connection, run, status="succeeded", result=result, error=None, record=record)


def fail(connection: sa.Connection | Any, run: Run, *, error: str) -> str:
    """End ``run`` as failed for good (``aborted`` if an abort was asked); return the status.

    Raises
    ------
    Fenced
        The job no longer belongs to this run; nothing was written.
    """
    return _end(connection, run, status="failed", result=None, error=error, record=True)


def requeue(
    connection: sa.Connection | Any,
    run: Run,
    *,
    retry_at: datetime.datetime,
    error: str,
    counts: bool,
) -> str:
    """Put the job of a failed ``run`` back in the queue; return its new status.

    Parameters
    ----------
    counts:
        Whether the run uses the task's retry budget (a retry) or not (the run was only
        interrupted by a broken database connection).

    Returns
    -------
    ``todo``, or ``aborted`` (an abort was asked) or ``failed`` (another job with the same
    queueing lock waits already).

    Raises
    ------
    Fenced
        The job no longer belongs to this run; nothing was written.
    """
    row = connection.execute(
        sa.text(sql.queries()["requeue_run"]),
        {
            "job_id": run.job_id,
            "run": run.run,
            "retry_at": retry_at,
            "error": error,
            "counts": counts,
            "mask": _mask(run.job.task_name),
        },
    ).first()
    if row is None:
        raise Fenced(run)
    return str(row.status)


def release(connection: sa.Connection | Any, run: Run) -> None:
    """Put back a run that never started (its process is stopping); no counter changes."""
    connection.execute(
        sa.text(sql.queries()["release_run"]), {"job_id": run.job_id, "run": run.run}
    )


def _end(
    connection: sa.Connection | Any,
    run: Run,
    *,
    status: str,
    result: str | None,
    error: str | None,
    record: bool,
) -> str:
    row = connection.execute(
        sa.text(sql.queries()["end_run"]),
        {
            "job_id": run.job_id,
            "run": run.run,
            "status": status,
            "result": result,
            "error": error,
            "record": record,
            "mask": _mask(run.job.task_name),
        },
    ).first()
    if row is None:
        raise Fenced(run)
    return str(row.status)


def recover(
    connection: sa.Connection | Any, *, stalled_after: float, max_blamed: int
) -> SweepReport:
    """Take runs away from dead workers (see ``recover_stalled_jobs``); the caller commits.

    Only one process sweeps at a time: the others get ``claimed=False``.
    """
    q = sql.queries()
    if not connection.execute(sa.text(q["claim_recovery_sweep"])).scalar_one():
        return SweepReport(claimed=False)
    report = SweepReport()
    rows = connection.execute(
        sa.text(q["recover_stalled_jobs"]),
        {"stalled_after": stalled_after, "max_blamed": max_blamed, "masks": _all_masks()},
    ).all()
    for row in rows:
        getattr(report, row.verdict).append(row.id)
    return report


def prune_dead_workers(connection: sa.Connection | Any, *, older_than: float) -> None:
    """Forget worker rows silent for ``older_than`` seconds that hold no running job."""
    connection.execute(sa.text(sql.queries()["prune_dead_workers"]), {"older_than": older_than})


def cancel(connection: sa.Connection | Any, job_id: int, task_name: str) -> bool:
    """Cancel job ``job_id`` if it waits (its secret arguments erased); else ask a running one
    to abort. Return whether it was cancelled (``False``: abort requested, or neither)."""
    q = sql.queries()
    cancelled = connection.execute(
        sa.text(q["cancel_waiting_job"]), {"id": job_id, "mask": _mask(task_name)}
    ).first()
    if cancelled is not None:
        return True
    connection.execute(sa.text(q["request_abort"]), {"id": job_id})
    return False


def retry_failed(connection: sa.Connection | Any, job_id: int) -> None:
    """Put a failed job back in the queue now."""
    connection.execute(sa.text(sql.queries()["retry_failed_job"]), {"id": job_id})


def _mask(task_name: str) -> str | None:
    names = sorted(secrets.names_for(task_name))
    return json.dumps(dict.fromkeys(names, secrets.MASK)) if names else None


def _all_masks() -> str:
    return json.dumps(
        {
            name: dict.fromkeys(sorted(secret_names), secrets.MASK)
            for name, secret_names in secrets.all_secret_args().items()
            if secret_names
        }
    )
