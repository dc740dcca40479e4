"""Scheduler ticks: one row per periodic job and scheduled time, the proof that it fired once."""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from worker.domain.models.base import Base, str_enum


class TickOutcome(enum.StrEnum):
    """What became of one scheduled time of a periodic job."""

    #: Its job was deferred (``procrastinate_job_id``).
    DEFERRED = "deferred"
    #: Missed while no scheduler ran; a later tick's job does its work (policy ``coalesce``).
    COALESCED = "coalesced"
    #: Missed while no scheduler ran, and not run (policy ``skip``).
    SKIPPED = "skipped"
    #: Not deferred: the job of an earlier tick was still waiting (its queueing lock).
    ALREADY_QUEUED = "already_queued"


class SchedulerTick(Base):
    """A periodic job's scheduled time, inserted in the transaction that defers its job.

    The primary key is what makes a tick fire once whatever the number of schedulers: a second
    process (or a second leader during a failover) that computes the same ``tick_at`` inserts
    nothing and defers nothing. ``procrastinate_job_id`` has no foreign key: finished jobs are
    pruned before their ticks.
    """

    __tablename__ = "scheduler_ticks"
    __table_args__ = (sa.Index("ix_scheduler_ticks_tick_at", "tick_at", postgresql_using="brin"),)

    #: Name of the entry in the schedule table (``worker.maintenance.schedule``).
    job_name: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    #: The trigger's scheduled time (UTC), not the time it fired.
    tick_at: Mapped[datetime] = mapped_column(primary_key=True)
    outcome: Mapped[TickOutcome] = mapped_column(str_enum(TickOutcome, name="outcome"))
    #: When the scheduler recorded it.
    fired_at: Mapped[datetime] = mapped_column(server_default=sa.func.now())
    procrastinate_job_id: Mapped[int | None] = mapped_column(sa.BigInteger)
