"""Recorded job outcomes: what procrastinate does not keep (results, error text, timings)."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from worker.domain.models.base import Base, str_enum


class OutcomeStatus(enum.StrEnum):
    """Final or intermediate outcome of one job, in Celery's words."""

    #: The task's writes and this row committed together: the effect happened exactly once.
    SUCCESS = "SUCCESS"
    #: The last attempt raised and will be retried; ``error`` says why.
    RETRY = "RETRY"
    #: The job failed for good; ``error`` says why.
    FAILURE = "FAILURE"


class TaskResult(Base):
    """One row per procrastinate job that ran at least once, keyed by the job id.

    A success is written in the same transaction as the task's own writes, so a job redelivered
    after a crash finds it and does not repeat the effect. Failures are written in their own short
    transaction after the task's transaction rolled back. There is no foreign key to
    ``procrastinate_jobs``: finished jobs may be deleted there while their outcome stays here.
    """

    __tablename__ = "task_results"
    # BRIN: finished_at grows with the insertion order, and a BRIN index costs next to nothing
    # to maintain on the job hot path; retention clean-ups scan by it.
    __table_args__ = (
        sa.Index("ix_task_results_finished_at", "finished_at", postgresql_using="brin"),
    )

    job_id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)
    task_name: Mapped[str] = mapped_column(sa.String(128))
    queue_name: Mapped[str] = mapped_column(sa.String(128))
    status: Mapped[OutcomeStatus] = mapped_column(str_enum(OutcomeStatus, name="status"))
    #: JSON value the task returned (``null`` for ``None``).
    result: Mapped[Any | None] = mapped_column(JSONB(none_as_null=True))
    #: ``ExceptionType: message`` of the last failure.
    error: Mapped[str | None] = mapped_column(sa.Text)
    #: 1 for the first run; procrastinate's ``attempts`` + 1.
    attempt: Mapped[int] = mapped_column(sa.Integer)
    started_at: Mapped[datetime] = mapped_column()
    finished_at: Mapped[datetime] = mapped_column()
    #: Wall-clock duration of the last attempt, in seconds.
    duration: Mapped[float] = mapped_column(sa.Float)
