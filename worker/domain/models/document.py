"""Documents of a dataset, their segments and the child chunks of parent/child segments."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from worker.domain.models.base import Base, created_at, str_enum, tenant_fk, updated_at, uuid_pk
from worker.domain.models.enums import (
    UNFINISHED_INDEXING_STATUSES,
    DataSourceType,
    DocumentCreatedFrom,
    IndexingStatus,
    IndexStructureType,
    SegmentStatus,
    SegmentType,
)

_UNFINISHED_SQL = ", ".join(f"'{status.value}'" for status in UNFINISHED_INDEXING_STATUSES)


class Document(Base):
    """A source document of a dataset and the progress of its indexing."""

    __tablename__ = "documents"
    __table_args__ = (
        # The recovery sweep's "stuck in progress" scan; completed/error rows stay out of it.
        sa.Index(
            "ix_documents_indexing_status_unfinished",
            "indexing_status",
            postgresql_where=sa.text(f"indexing_status IN ({_UNFINISHED_SQL})"),
        ),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    tenant_id: Mapped[uuid.UUID] = tenant_fk()
    dataset_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("datasets.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column()
    data_source_type: Mapped[DataSourceType] = mapped_column(
        str_enum(DataSourceType, name="data_source_type")
    )
    #: Where the content comes from: ``upload_file_id``; Notion workspace/page ids,
    #: ``last_edited_time``, ``credential_id``; crawler ``provider``, ``job_id``, ``url``, ...
    #: No foreign key can reach into it, so ``upload_files`` rows are not protected by one.
    data_source_info: Mapped[dict[str, Any] | None] = mapped_column()
    dataset_process_rule_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("dataset_process_rules.id", ondelete="SET NULL"), index=True
    )
    batch: Mapped[str] = mapped_column(sa.String(255))
    name: Mapped[str] = mapped_column(sa.String(255))
    created_from: Mapped[DocumentCreatedFrom] = mapped_column(
        str_enum(DocumentCreatedFrom, name="created_from")
    )
    created_by: Mapped[uuid.UUID] = mapped_column()
    # No foreign key: the api_requests table is not part of this schema.
    created_api_request_id: Mapped[uuid.UUID | None] = mapped_column()
    created_at: Mapped[datetime] = created_at()

    processing_started_at: Mapped[datetime | None] = mapped_column()
    #: Legacy, unused by Dify's current code.
    file_id: Mapped[str | None] = mapped_column(sa.Text)
    word_count: Mapped[int | None] = mapped_column()
    parsing_completed_at: Mapped[datetime | None] = mapped_column()
    cleaning_completed_at: Mapped[datetime | None] = mapped_column()
    splitting_completed_at: Mapped[datetime | None] = mapped_column()
    tokens: Mapped[int | None] = mapped_column()
    #: Seconds spent indexing.
    indexing_latency: Mapped[float | None] = mapped_column(sa.Float)
    completed_at: Mapped[datetime | None] = mapped_column()

    #: Checked before every status write; a paused document keeps its last status.
    is_paused: Mapped[bool | None] = mapped_column(server_default=sa.false())
    paused_by: Mapped[uuid.UUID | None] = mapped_column()
    paused_at: Mapped[datetime | None] = mapped_column()

    error: Mapped[str | None] = mapped_column(sa.Text)
    stopped_at: Mapped[datetime | None] = mapped_column()

    indexing_status: Mapped[IndexingStatus] = mapped_column(
        str_enum(IndexingStatus, name="indexing_status"), server_default=sa.text("'waiting'")
    )
    enabled: Mapped[bool] = mapped_column(server_default=sa.true())
    disabled_at: Mapped[datetime | None] = mapped_column()
    disabled_by: Mapped[uuid.UUID | None] = mapped_column()
    archived: Mapped[bool] = mapped_column(server_default=sa.false())
    archived_reason: Mapped[str | None] = mapped_column(sa.String(255))
    archived_by: Mapped[uuid.UUID | None] = mapped_column()
    archived_at: Mapped[datetime | None] = mapped_column()
    updated_at: Mapped[datetime] = updated_at()
    doc_type: Mapped[str | None] = mapped_column(sa.String(40))
    #: Values of the dataset's metadata fields, by field name.
    doc_metadata: Mapped[dict[str, Any] | None] = mapped_column()
    doc_form: Mapped[IndexStructureType] = mapped_column(
        str_enum(IndexStructureType, name="doc_form"), server_default=sa.text("'text_model'")
    )
    doc_language: Mapped[str | None] = mapped_column(sa.String(255))
    need_summary: Mapped[bool] = mapped_column(server_default=sa.false())


class DocumentSegment(Base):
    """A chunk of a document, and its entry in the vector or keyword index."""

    __tablename__ = "document_segments"
    __table_args__ = (
        sa.UniqueConstraint("document_id", "position"),
        sa.UniqueConstraint("dataset_id", "index_node_id"),
        sa.Index(None, "document_id", "status"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    tenant_id: Mapped[uuid.UUID] = tenant_fk()
    dataset_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("datasets.id", ondelete="CASCADE"))
    document_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("documents.id", ondelete="CASCADE")
    )
    position: Mapped[int] = mapped_column()
    content: Mapped[str] = mapped_column(sa.Text)
    word_count: Mapped[int] = mapped_column()
    tokens: Mapped[int] = mapped_column()
    created_by: Mapped[uuid.UUID] = mapped_column()

    #: Id of the node in the vector store (and the keyword table).
    index_node_id: Mapped[str | None] = mapped_column(sa.String(255))
    index_node_hash: Mapped[str | None] = mapped_column(sa.String(255))
    #: User-visible on/off switch, independent of ``status``.
    enabled: Mapped[bool] = mapped_column(server_default=sa.true())
    #: Answer of a ``qa_model`` segment (``content`` holds the question).
    answer: Mapped[str | None] = mapped_column(sa.Text)
    keywords: Mapped[list[str] | None] = mapped_column()
    disabled_at: Mapped[datetime | None] = mapped_column()
    disabled_by: Mapped[uuid.UUID | None] = mapped_column()
    status: Mapped[SegmentStatus] = mapped_column(
        str_enum(SegmentStatus, name="status"), server_default=sa.text("'waiting'")
    )
    created_at: Mapped[datetime] = created_at()
    updated_by: Mapped[uuid.UUID | None] = mapped_column()
    updated_at: Mapped[datetime] = updated_at()
    indexing_at: Mapped[datetime | None] = mapped_column()
    completed_at: Mapped[datetime | None] = mapped_column()
    error: Mapped[str | None] = mapped_column(sa.Text)
    stopped_at: Mapped[datetime | None] = mapped_column()
    hit_count: Mapped[int] = mapped_column(server_default=sa.text("0"))


class ChildChunk(Base):
    """A child chunk of a parent segment (``hierarchical_model`` documents only)."""

    __tablename__ = "child_chunks"
    __table_args__ = (
        sa.UniqueConstraint("segment_id", "position"),
        sa.UniqueConstraint("dataset_id", "index_node_id"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    tenant_id: Mapped[uuid.UUID] = tenant_fk()
    dataset_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("datasets.id", ondelete="CASCADE"))
    document_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("documents.id", ondelete="CASCADE"), index=True
    )
    segment_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("document_segments.id", ondelete="CASCADE")
    )
    position: Mapped[int] = mapped_column()
    content: Mapped[str] = mapped_column(sa.Text)
    word_count: Mapped[int] = mapped_column()
    created_by: Mapped[uuid.UUID] = mapped_column()
    created_at: Mapped[datetime] = created_at()
    updated_by: Mapped[uuid.UUID | None] = mapped_column()
    updated_at: Mapped[datetime] = updated_at()
    indexing_at: Mapped[datetime | None] = mapped_column()
    completed_at: Mapped[datetime | None] = mapped_column()
    index_node_id: Mapped[str | None] = mapped_column(sa.String(255))
    index_node_hash: Mapped[str | None] = mapped_column(sa.String(255))
    type: Mapped[SegmentType] = mapped_column(
        str_enum(SegmentType, name="type"), server_default=sa.text("'automatic'")
    )
    error: Mapped[str | None] = mapped_column(sa.Text)
