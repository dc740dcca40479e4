"""Ops traces (which provider an app traces to, and what became of each payload) and the queue
monitor's alert state."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from worker.domain.models.base import Base, created_at, str_enum, updated_at, uuid_pk


class TraceAppConfig(Base):
    """An app's configuration of one tracing provider (Dify's ``trace_app_config``).

    ``tracing_config`` holds the provider's settings and secrets as given (see the README:
    stored at rest as written by app code, not encrypted per tenant as Dify does).
    """

    __tablename__ = "trace_app_config"

    id: Mapped[uuid.UUID] = uuid_pk()
    app_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("apps.id", ondelete="CASCADE"), index=True
    )
    #: ``langfuse`` (the one provider delivered here), ``langsmith``, ``opik``, ...
    tracing_provider: Mapped[str | None] = mapped_column(sa.String(255))
    #: ``{"public_key", "secret_key", "host"}`` for Langfuse.
    tracing_config: Mapped[dict[str, Any] | None] = mapped_column()
    is_active: Mapped[bool] = mapped_column(server_default=sa.true())
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()


class TraceDeliveryStatus(enum.StrEnum):
    """What became of one trace payload."""

    #: Being sent, or sent and refused for a reason that passes: the job retries.
    PENDING = "pending"
    #: The provider accepted every event.
    SENT = "sent"
    #: It will not be delivered; ``error`` says why.
    FAILED = "failed"
    #: Tracing was off (or its configuration gone) when the job ran: nothing sent.
    SKIPPED = "skipped"


#: Statuses after which the payload file is no longer needed.
FINAL_TRACE_STATUSES = frozenset(
    {TraceDeliveryStatus.SENT, TraceDeliveryStatus.FAILED, TraceDeliveryStatus.SKIPPED}
)


class TraceDelivery(Base):
    """The outcome of one payload file ``ops_trace/{app_id}/{file_id}.json``.

    ``app_id`` and ``job_id`` have no foreign key: the record outlives the app and the job.
    """

    __tablename__ = "trace_deliveries"
    __table_args__ = (
        sa.Index("ix_trace_deliveries_created_at", "created_at", postgresql_using="brin"),
    )

    #: Dify's ``file_id`` (a uuid4 hex), the payload's name.
    file_id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    app_id: Mapped[uuid.UUID] = mapped_column(index=True)
    provider: Mapped[str | None] = mapped_column(sa.String(255))
    status: Mapped[TraceDeliveryStatus] = mapped_column(
        str_enum(TraceDeliveryStatus, name="status")
    )
    #: Times the payload was handed to the provider.
    attempts: Mapped[int] = mapped_column(server_default=sa.text("0"))
    #: Events in the payload's batch.
    events: Mapped[int] = mapped_column(server_default=sa.text("0"))
    error: Mapped[str | None] = mapped_column(sa.Text)
    #: The procrastinate job that last handled it.
    job_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()
    sent_at: Mapped[datetime | None] = mapped_column()


class QueueMonitorAlert(Base):
    """The queue monitor's state per queue, so that an alert is mailed once while it holds."""

    __tablename__ = "queue_monitor_alerts"

    queue_name: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    #: Whether the queue is over the threshold since the last alert.
    alerting: Mapped[bool] = mapped_column(server_default=sa.false())
    #: Jobs waiting and age (seconds) of the oldest ready one, at the last check.
    waiting: Mapped[int] = mapped_column(server_default=sa.text("0"))
    oldest_ready_seconds: Mapped[float | None] = mapped_column(sa.Float)
    alerted_at: Mapped[datetime | None] = mapped_column()
    cleared_at: Mapped[datetime | None] = mapped_column()
    updated_at: Mapped[datetime] = updated_at()
