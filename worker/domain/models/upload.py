"""Files uploaded to a workspace's storage."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from worker.domain.models.base import Base, created_at, str_enum, tenant_fk, uuid_pk
from worker.domain.models.enums import CreatorUserRole


class UploadFile(Base):
    """A file in object storage; documents point at it from ``data_source_info``."""

    __tablename__ = "upload_files"

    id: Mapped[uuid.UUID] = uuid_pk()
    tenant_id: Mapped[uuid.UUID] = tenant_fk()
    #: Storage backend that holds the file (``opendal``, ``s3``, ``local``, ...).
    storage_type: Mapped[str] = mapped_column(sa.String(255))
    #: Path of the file in that storage.
    key: Mapped[str] = mapped_column(sa.String(255))
    name: Mapped[str] = mapped_column(sa.String(255))
    #: Size in bytes.
    size: Mapped[int] = mapped_column()
    extension: Mapped[str] = mapped_column(sa.String(255))
    mime_type: Mapped[str | None] = mapped_column(sa.String(255))
    created_by_role: Mapped[CreatorUserRole] = mapped_column(
        str_enum(CreatorUserRole, name="created_by_role"), server_default=sa.text("'account'")
    )
    #: An ``accounts.id`` or an ``end_users.id``, depending on ``created_by_role``.
    created_by: Mapped[uuid.UUID] = mapped_column()
    created_at: Mapped[datetime] = created_at()
    #: Whether something references the file; Dify does not maintain it consistently.
    used: Mapped[bool] = mapped_column(server_default=sa.false())
    used_by: Mapped[uuid.UUID | None] = mapped_column()
    used_at: Mapped[datetime | None] = mapped_column()
    #: Hex SHA3-256 of the content.
    hash: Mapped[str | None] = mapped_column(sa.String(255))
    source_url: Mapped[str] = mapped_column(sa.Text, server_default=sa.text("''"))
