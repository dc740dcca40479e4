"""The dashboard's tables: paused queues, the operators' action log and the metric totals.

The totals make the Prometheus counters of ``/metrics`` monotonic whatever retention deletes:
events are folded into ``dashboard_job_totals`` once every transaction that could still add one
below the fold point has ended (``dashboard_metric_state``), and triggers fold whatever retention
deletes before it is folded (migration 0013).
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from worker.domain.models.base import Base


class QueuePause(Base):
    """A queue whose fetching is paused: ``tl_fetch_jobs`` takes none of its jobs."""

    __tablename__ = "dashboard_queue_pauses"

    queue_name: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    paused_by: Mapped[str] = mapped_column(sa.String(128))
    paused_at: Mapped[datetime] = mapped_column(server_default=sa.func.now())


class DashboardAction(Base):
    """One action an operator took through the dashboard: who, what, on what, and the outcome."""

    __tablename__ = "dashboard_actions"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(always=True), primary_key=True)
    at: Mapped[datetime] = mapped_column(server_default=sa.func.now())
    actor: Mapped[str] = mapped_column(sa.String(128))
    remote_addr: Mapped[str | None] = mapped_column(sa.String(64))
    action: Mapped[str] = mapped_column(sa.String(32))
    target: Mapped[str] = mapped_column(sa.String(256))
    outcome: Mapped[str] = mapped_column(sa.Text)


class MetricState(Base):
    """The one row saying which events are folded into the totals, and which are about to be."""

    __tablename__ = "dashboard_metric_state"
    __table_args__ = (sa.CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(sa.SmallInteger, primary_key=True, autoincrement=False)
    #: Events with ``id <= folded_upto`` are counted in the totals (or were deleted unfolded and
    #: counted then).
    folded_upto: Mapped[int] = mapped_column(sa.BigInteger, server_default=sa.text("0"))
    #: The next fold point: the largest event id seen at ``candidate_at``.
    candidate_upto: Mapped[int] = mapped_column(sa.BigInteger, server_default=sa.text("0"))
    candidate_at: Mapped[datetime] = mapped_column(server_default=sa.func.now())
    #: The first unassigned transaction id, read a while after ``candidate_at``: once every
    #: transaction below it has ended, no event at or below ``candidate_upto`` can still appear.
    candidate_xmax: Mapped[int | None] = mapped_column(sa.BigInteger)


class JobTotal(Base):
    """A folded counter (``succeeded``, ``failed``, ``retried``, ``lost_runs``, durations...)
    of one queue and task."""

    __tablename__ = "dashboard_job_totals"

    queue_name: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    task_name: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    metric: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    value: Mapped[float] = mapped_column(sa.Float, server_default=sa.text("0"))
