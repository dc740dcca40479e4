"""Reading and writing ``task_results``: the recorded outcome of each job."""

from __future__ import annotations

import datetime
from typing import Any

import sqlalchemy as sa
from procrastinate import jobs
from sqlalchemy import orm
from sqlalchemy.dialects.postgresql import insert

from worker.domain.models import OutcomeStatus, TaskResult


def record(
    session: orm.Session,
    job: jobs.Job,
    status: OutcomeStatus,
    *,
    started_at: datetime.datetime,
    duration: float,
    result: Any = None,
    error: str | None = None,
) -> None:
    """Insert or overwrite the outcome of ``job`` (one row per job id)."""
    assert job.id is not None, "only deferred jobs have outcomes"
    record_row(
        session,
        job_id=job.id,
        task_name=job.task_name,
        queue_name=job.queue,
        status=status,
        attempt=job.attempts + 1,
        started_at=started_at,
        duration=duration,
        result=result,
        error=error,
    )


def record_row(
    session: orm.Session,
    *,
    job_id: int,
    task_name: str,
    queue_name: str,
    status: OutcomeStatus,
    attempt: int,
    started_at: datetime.datetime,
    duration: float,
    result: Any = None,
    error: str | None = None,
) -> None:
    """Upsert one ``task_results`` row."""
    values = {
        "job_id": job_id,
        "task_name": task_name,
        "queue_name": queue_name,
        "status": status,
        "result": result,
        "error": error,
        "attempt": attempt,
        "started_at": started_at,
        "finished_at": datetime.datetime.now(datetime.UTC),
        "duration": duration,
    }
    statement = insert(TaskResult).values(**values)
    session.execute(
        statement.on_conflict_do_update(
            index_elements=[TaskResult.job_id],
            set_={key: statement.excluded[key] for key in values if key != "job_id"},
            # a committed SUCCESS is final: a late duplicate run's failure does not replace it
            where=TaskResult.status != OutcomeStatus.SUCCESS,
        )
    )
