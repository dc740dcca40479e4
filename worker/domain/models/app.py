"""Apps and their annotation replies (curated answers matched by vector search)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from worker.domain.models.base import Base, created_at, str_enum, tenant_fk, updated_at, uuid_pk
from worker.domain.models.enums import AppStatus


def _app_fk(*, index: bool = True) -> Mapped[uuid.UUID]:
    """``app_id`` referencing ``apps.id``; deleting an app deletes the row."""
    return mapped_column(sa.ForeignKey("apps.id", ondelete="CASCADE"), index=index)


class App(Base):
    """An app (chat, completion, workflow, agent, ...) of a workspace."""

    __tablename__ = "apps"

    id: Mapped[uuid.UUID] = uuid_pk()
    tenant_id: Mapped[uuid.UUID] = tenant_fk()
    name: Mapped[str] = mapped_column(sa.String(255))
    description: Mapped[str] = mapped_column(sa.Text, server_default=sa.text("''"))
    #: ``completion``, ``workflow``, ``chat``, ``advanced-chat``, ``agent-chat``, ...
    mode: Mapped[str] = mapped_column(sa.String(255))
    icon_type: Mapped[str | None] = mapped_column(sa.String(255))
    icon: Mapped[str | None] = mapped_column(sa.String(255))
    icon_background: Mapped[str | None] = mapped_column(sa.String(255))
    # No foreign keys: app_model_configs and workflows are not part of this schema.
    app_model_config_id: Mapped[uuid.UUID | None] = mapped_column()
    workflow_id: Mapped[uuid.UUID | None] = mapped_column()
    status: Mapped[AppStatus] = mapped_column(
        str_enum(AppStatus, name="status"), server_default=sa.text("'normal'")
    )
    created_by: Mapped[uuid.UUID | None] = mapped_column()
    created_at: Mapped[datetime] = created_at()
    updated_by: Mapped[uuid.UUID | None] = mapped_column()
    updated_at: Mapped[datetime] = updated_at()
    #: Dify's tracing switch, ``{"enabled": bool, "tracing_provider": "langfuse"}``.
    tracing: Mapped[dict[str, Any] | None] = mapped_column()


class MessageAnnotation(Base):
    """A curated question/answer pair of an app, indexed for annotation replies."""

    __tablename__ = "message_annotations"

    id: Mapped[uuid.UUID] = uuid_pk()
    app_id: Mapped[uuid.UUID] = _app_fk()
    # No foreign keys: conversations and messages are not part of this schema.
    conversation_id: Mapped[uuid.UUID | None] = mapped_column()
    message_id: Mapped[uuid.UUID | None] = mapped_column()
    question: Mapped[str | None] = mapped_column(sa.Text)
    #: The answer.
    content: Mapped[str] = mapped_column(sa.Text)
    hit_count: Mapped[int] = mapped_column(server_default=sa.text("0"))
    #: Author of the annotation.
    account_id: Mapped[uuid.UUID] = mapped_column()
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()


class AppAnnotationSetting(Base):
    """Annotation reply settings of an app: match threshold and embedding collection."""

    __tablename__ = "app_annotation_settings"
    __table_args__ = (sa.UniqueConstraint("app_id"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    app_id: Mapped[uuid.UUID] = _app_fk(index=False)
    score_threshold: Mapped[float] = mapped_column(sa.Float, server_default=sa.text("0"))
    collection_binding_id: Mapped[uuid.UUID | None] = mapped_column(
        # explicit name: the conventional one exceeds PostgreSQL's 63 characters
        sa.ForeignKey(
            "dataset_collection_bindings.id",
            ondelete="SET NULL",
            name="fk_app_annotation_settings_collection_binding_id",
        ),
        index=True,
    )
    created_user_id: Mapped[uuid.UUID] = mapped_column()
    created_at: Mapped[datetime] = created_at()
    updated_user_id: Mapped[uuid.UUID] = mapped_column()
    updated_at: Mapped[datetime] = updated_at()


class AppAnnotationHitHistory(Base):
    """One match of an annotation against a user question."""

    __tablename__ = "app_annotation_hit_histories"

    id: Mapped[uuid.UUID] = uuid_pk()
    app_id: Mapped[uuid.UUID] = _app_fk()
    annotation_id: Mapped[uuid.UUID] = mapped_column(
        # explicit name: the conventional one exceeds PostgreSQL's 63 characters
        sa.ForeignKey(
            "message_annotations.id",
            ondelete="CASCADE",
            name="fk_app_annotation_hit_histories_annotation_id",
        ),
        index=True,
    )
    #: Where the question came from (``api``, ``web_app``, ``explore_app``, ``dev``, ...).
    source: Mapped[str] = mapped_column(sa.Text)
    question: Mapped[str] = mapped_column(sa.Text)
    #: Who asked.
    account_id: Mapped[uuid.UUID] = mapped_column()
    created_at: Mapped[datetime] = created_at()
    score: Mapped[float] = mapped_column(sa.Float, server_default=sa.text("0"))
    # No foreign key: messages are not part of this schema.
    message_id: Mapped[uuid.UUID] = mapped_column()
    #: Copies of the annotation at the time of the hit.
    annotation_question: Mapped[str] = mapped_column(sa.Text)
    annotation_content: Mapped[str] = mapped_column(sa.Text)
