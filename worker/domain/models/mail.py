"""Delivery records: one row per e-mail a mail job sends, so that none "succeeds" unseen."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from worker.domain.models.base import Base, created_at, str_enum, updated_at, uuid_pk


class DeliveryStatus(enum.StrEnum):
    """Where one e-mail stands."""

    #: Handed to the backend now or about to be; a crash here may send it twice (at least once).
    SENDING = "sending"
    #: The backend accepted it; a redelivered job does not send it again.
    SENT = "sent"
    #: The backend refused it for a transient reason; the job retries.
    RETRYING = "retrying"
    #: It will not be sent; ``error`` says why.
    FAILED = "failed"


class MailDelivery(Base):
    """One e-mail of one mail job to one recipient.

    ``job_id`` is procrastinate's job id, with no foreign key: finished jobs may be deleted while
    their delivery records stay.
    """

    __tablename__ = "mail_deliveries"
    __table_args__ = (
        sa.UniqueConstraint("job_id", "recipient"),
        sa.Index("ix_mail_deliveries_created_at", "created_at", postgresql_using="brin"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    job_id: Mapped[int] = mapped_column(sa.BigInteger)
    #: ``EmailType`` value, e.g. ``invite_member``; ``enterprise_custom`` for the inner mail.
    mail_type: Mapped[str] = mapped_column(sa.String(64))
    recipient: Mapped[str] = mapped_column(sa.String(320), index=True)
    language: Mapped[str] = mapped_column(sa.String(16))
    status: Mapped[DeliveryStatus] = mapped_column(str_enum(DeliveryStatus, name="status"))
    #: ``smtp``, ``resend`` or ``sendgrid``.
    backend: Mapped[str] = mapped_column(sa.String(16))
    #: Provider message id (Resend, SendGrid) or our Message-ID (SMTP).
    provider_message_id: Mapped[str | None] = mapped_column(sa.String(255))
    #: The SMTP server's final reply, or the provider's error reply.
    reply: Mapped[str | None] = mapped_column(sa.Text)
    error: Mapped[str | None] = mapped_column(sa.Text)
    #: Times the job tried to send it.
    attempts: Mapped[int] = mapped_column(server_default=sa.text("0"))
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()
    sent_at: Mapped[datetime | None] = mapped_column()
