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
import functools
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, LiteralString

import psycopg
import sqlalchemy as sa
from procrastinate import jobs
from psycopg import pq
from psycopg.pq import abc as pq_abc

from worker.domain import sql
from worker.jobs import secrets

#: SQLAlchemy's ``:name`` placeholders, as psycopg's ``%(name)s``.
_PLACEHOLDER = re.compile(r"(?<![:\w]):([a-z_]+)\b")


#: What ``end_runs`` says of a run that no longer owned its job.
FENCED = "fenced"

#: The SQLSTATE ``tl_succeed_run`` raises for a fenced run (migration 0016).
FENCED_SQLSTATE = "TLF01"


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


@dataclass(frozen=True, kw_only=True)
class Ending:
    """How a run ended, to be written (alone, or batched with others)."""

    run: Run
    #: ``succeeded``; ``failed`` (for good); ``retry`` (the task's policy retries it, at
    #: ``retry_at``); ``interrupted`` (a broken database connection: again at ``retry_at``,
    #: no retry used). An abort request or a waiting duplicate can still end it otherwise.
    action: Literal["succeeded", "failed", "retry", "interrupted"]
    #: The task's return value (a JSON value).
    result: Any = None
    error: str | None = None
    #: Write the outcome row of a success (skipped when there is nothing procrastinate does not
    #: keep: no value, no writes).
    record: bool = True
    retry_at: datetime.datetime | None = None

    def as_json(self) -> dict[str, Any]:
        """One element of ``end_runs``'s array."""
        names = secrets.names_for(self.run.job.task_name)
        return {
            "id": self.run.job_id,
            "run": self.run.run,
            "action": self.action,
            "result": self.result,
            "error": self.error,
            "record": self.record,
            "retry_at": None if self.retry_at is None else self.retry_at.isoformat(),
            "mask": dict.fromkeys(sorted(names), secrets.MASK) if names else None,
        }


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


def succeed_and_commit(connection: sa.Connection, run: Run, *, result: Any, record: bool) -> None:
    """End ``run`` as succeeded in the caller's transaction and commit that transaction, in one
    round trip: ``tl_succeed_run`` and ``COMMIT`` go in one message, by the simple query
    protocol (which takes several statements, and no parameters: the values are inlined, the
    JSON ones escaped by libpq), on the driver's connection. The caller's SQLAlchemy transaction
    is still open on return, the server's is over: ending it sends nothing, the connection being
    idle (``UnitOfWork.commit_success`` fires its after-commit event and closes the session).

    Raises
    ------
    Fenced
        The job no longer belongs to this run: the error aborted the transaction before the
        ``COMMIT`` was read; nothing is committed, and the caller must roll back.
    """
    driver = connection.connection.driver_connection
    assert isinstance(driver, psycopg.Connection)
    values = {
        "job_id": run.job_id,
        "run": run.run,
        "result": None if result is None else json.dumps(result),
        "record": record,
        "mask": _mask(run.job.task_name),
    }
    statement = _inline("succeed_and_commit", values, pq.Escaping(driver.pgconn))
    try:
        # on the driver's connection: SQLAlchemy's statement machinery cost more than the rest
        # of the end (no parameters: psycopg sends it by the simple query protocol)
        driver.execute(statement.encode(), prepare=False)
    except psycopg.Error as exc:
        if exc.sqlstate == FENCED_SQLSTATE:
            raise Fenced(run) from None
        if driver.broken or driver.closed:
            connection.invalidate(exc)  # as SQLAlchemy would have: the pool replaces it
        raise


@functools.cache
def _pieces(name: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """A named query without its comment lines (values are inlined in its statements only),
    split once around its ``:name`` placeholders: the texts between them, and their names."""
    lines = sql.queries()[name].splitlines()
    text = "\n".join(line for line in lines if not line.lstrip().startswith("--"))
    parts = _PLACEHOLDER.split(text)  # text, name, text, ..., name, text
    return tuple(parts[0::2]), tuple(parts[1::2])


def _inline(name: str, values: Mapping[str, Any], escaping: pq_abc.Escaping) -> str:
    """The named query with each ``:name`` replaced by its value as an SQL literal."""
    texts, names = _pieces(name)
    out = [texts[0]]
    for placeholder, text in zip(names, texts[1:], strict=True):
        value = values[placeholder]
        if value is None:
            out.append("NULL")
        elif isinstance(value, bool):
            out.append("true" if value else "false")
        elif isinstance(value, int):
            out.append(str(value))
        else:
            out.append(bytes(escaping.escape_literal(str(value).encode())).decode())
        out.append(text)
    return "".join(out)


def end_parameters(endings: Sequence[Ending]) -> dict[str, str]:
    """Parameters of ``end_runs`` (also run by the runner on its own connections)."""
    return {"ends": json.dumps([ending.as_json() for ending in endings])}


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


# -- retention ---------------------------------------------------------------------------------
# Deleting finished jobs and their outcomes, for ``worker.maintenance.retention`` (which deletes
# the jobs' events first, and runs each call below in a short transaction of its own).


@dataclass(frozen=True, kw_only=True)
class Cutoffs:
    """Jobs that ended before these times may be deleted."""

    #: Succeeded, cancelled and aborted jobs.
    finished_before: datetime.datetime
    #: Failed jobs.
    failed_before: datetime.datetime


def prunable_jobs(
    connection: sa.Connection | Any, cutoffs: Cutoffs, *, after: int, limit: int
) -> list[tuple[int, int]]:
    """Up to ``limit`` ``(job id, runs)`` of finished jobs past their cutoff, ids above ``after``,
    by id. Never a waiting or running job."""
    rows = connection.execute(
        sa.text(sql.queries()["retention_prunable_jobs"]),
        {"after": after, "limit": limit, **_cutoff_parameters(cutoffs)},
    ).all()
    return [(row.id, row.runs) for row in rows]


def delete_jobs(connection: sa.Connection | Any, jobs: list[tuple[int, int]]) -> list[int]:
    """Delete the ``(job id, runs)`` read by :func:`prunable_jobs` that were not run again and
    are still finished; return the ids deleted. Their outcomes stay (:func:`delete_outcomes`)."""
    rows = connection.execute(
        sa.text(sql.queries()["retention_delete_jobs"]),
        {"ids": [job_id for job_id, _ in jobs], "runs": [runs for _, runs in jobs]},
    ).all()
    return [row.id for row in rows]


def orphan_outcomes(
    connection: sa.Connection | Any, cutoffs: Cutoffs, *, after: int, limit: int
) -> list[int]:
    """Up to ``limit`` job ids above ``after`` whose outcome outlived its job and its cutoff."""
    rows = connection.execute(
        sa.text(sql.queries()["retention_orphan_outcomes"]),
        {"after": after, "limit": limit, **_cutoff_parameters(cutoffs)},
    ).all()
    return [row.job_id for row in rows]


def delete_outcomes(connection: sa.Connection | Any, job_ids: list[int]) -> int:
    """Delete the outcomes of ``job_ids`` whose job is gone; return how many."""
    return len(
        connection.execute(
            sa.text(sql.queries()["retention_delete_outcomes"]), {"ids": job_ids}
        ).all()
    )


def _cutoff_parameters(cutoffs: Cutoffs) -> dict[str, datetime.datetime]:
    return {"finished_before": cutoffs.finished_before, "failed_before": cutoffs.failed_before}
