"""Datasets (knowledge bases) and the tables hanging off them, plus the embedding cache."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from worker.domain.models.base import Base, created_at, str_enum, tenant_fk, updated_at, uuid_pk
from worker.domain.models.enums import (
    CollectionBindingType,
    CreatorUserRole,
    DatasetMetadataType,
    DatasetPermission,
    DatasetQuerySource,
    DatasetRuntimeMode,
    DataSourceType,
    IndexStructureType,
    IndexTechniqueType,
    ProcessRuleMode,
)


def _dataset_fk(*, index: bool = True) -> Mapped[uuid.UUID]:
    """``dataset_id`` referencing ``datasets.id``; deleting a dataset deletes the row."""
    return mapped_column(sa.ForeignKey("datasets.id", ondelete="CASCADE"), index=index)


class DatasetCollectionBinding(Base):
    """The vector collection shared by everything embedded with one model, per purpose."""

    __tablename__ = "dataset_collection_bindings"
    __table_args__ = (sa.UniqueConstraint("provider_name", "model_name", "type"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    provider_name: Mapped[str] = mapped_column(sa.String(255))
    model_name: Mapped[str] = mapped_column(sa.String(255))
    type: Mapped[CollectionBindingType] = mapped_column(
        str_enum(CollectionBindingType, name="type"), server_default=sa.text("'dataset'")
    )
    collection_name: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = created_at()


class Dataset(Base):
    """A knowledge base: its documents, how they are indexed and where the vectors live."""

    __tablename__ = "datasets"

    id: Mapped[uuid.UUID] = uuid_pk()
    tenant_id: Mapped[uuid.UUID] = tenant_fk()
    name: Mapped[str] = mapped_column(sa.String(255))
    description: Mapped[str | None] = mapped_column(sa.Text)
    #: ``vendor`` (documents indexed here) or ``external`` (an external knowledge API).
    provider: Mapped[str] = mapped_column(sa.String(255), server_default=sa.text("'vendor'"))
    permission: Mapped[DatasetPermission] = mapped_column(
        str_enum(DatasetPermission, name="permission"), server_default=sa.text("'only_me'")
    )
    data_source_type: Mapped[DataSourceType | None] = mapped_column(
        str_enum(DataSourceType, name="data_source_type")
    )
    indexing_technique: Mapped[IndexTechniqueType | None] = mapped_column(
        str_enum(IndexTechniqueType, name="indexing_technique")
    )
    #: Vector store type and collection name (``{"type": ..., "vector_store": {...}}``).
    index_struct: Mapped[dict[str, Any] | None] = mapped_column()
    created_by: Mapped[uuid.UUID] = mapped_column()
    created_at: Mapped[datetime] = created_at()
    updated_by: Mapped[uuid.UUID | None] = mapped_column()
    updated_at: Mapped[datetime] = updated_at()
    embedding_model: Mapped[str | None] = mapped_column(sa.String(255))
    embedding_model_provider: Mapped[str | None] = mapped_column(sa.String(255))
    keyword_number: Mapped[int | None] = mapped_column(server_default=sa.text("10"))
    collection_binding_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("dataset_collection_bindings.id", ondelete="SET NULL"), index=True
    )
    retrieval_model: Mapped[dict[str, Any] | None] = mapped_column()
    #: ``{"enable": bool, "model_name": ..., "model_provider_name": ..., ...}``.
    summary_index_setting: Mapped[dict[str, Any] | None] = mapped_column()
    built_in_field_enabled: Mapped[bool] = mapped_column(server_default=sa.false())
    icon_info: Mapped[dict[str, Any] | None] = mapped_column()
    runtime_mode: Mapped[DatasetRuntimeMode | None] = mapped_column(
        str_enum(DatasetRuntimeMode, name="runtime_mode"), server_default=sa.text("'general'")
    )
    # No foreign key: the pipelines table is not part of this schema.
    pipeline_id: Mapped[uuid.UUID | None] = mapped_column()
    #: Overrides the documents' ``doc_form`` when set.
    chunk_structure: Mapped[IndexStructureType | None] = mapped_column(
        str_enum(IndexStructureType, name="chunk_structure")
    )
    enable_api: Mapped[bool] = mapped_column(server_default=sa.true())
    is_multimodal: Mapped[bool] = mapped_column(server_default=sa.false())


class DatasetProcessRule(Base):
    """Cleaning and segmentation settings used to index a dataset's documents."""

    __tablename__ = "dataset_process_rules"

    id: Mapped[uuid.UUID] = uuid_pk()
    dataset_id: Mapped[uuid.UUID] = _dataset_fk()
    mode: Mapped[ProcessRuleMode] = mapped_column(
        str_enum(ProcessRuleMode, name="mode"), server_default=sa.text("'automatic'")
    )
    #: Pre-processing rules, segmentation (separator, max_tokens, chunk_overlap), parent/child.
    rules: Mapped[dict[str, Any] | None] = mapped_column()
    created_by: Mapped[uuid.UUID] = mapped_column()
    created_at: Mapped[datetime] = created_at()


class DatasetMetadata(Base):
    """A metadata field defined on a dataset."""

    __tablename__ = "dataset_metadatas"

    id: Mapped[uuid.UUID] = uuid_pk()
    tenant_id: Mapped[uuid.UUID] = tenant_fk()
    dataset_id: Mapped[uuid.UUID] = _dataset_fk()
    type: Mapped[DatasetMetadataType] = mapped_column(str_enum(DatasetMetadataType, name="type"))
    name: Mapped[str] = mapped_column(sa.String(255))
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()
    created_by: Mapped[uuid.UUID] = mapped_column()
    updated_by: Mapped[uuid.UUID | None] = mapped_column()


class DatasetMetadataBinding(Base):
    """A document carrying a value for a metadata field (the value is in ``doc_metadata``)."""

    __tablename__ = "dataset_metadata_bindings"

    id: Mapped[uuid.UUID] = uuid_pk()
    tenant_id: Mapped[uuid.UUID] = tenant_fk()
    dataset_id: Mapped[uuid.UUID] = _dataset_fk()
    metadata_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("dataset_metadatas.id", ondelete="CASCADE"), index=True
    )
    document_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("documents.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = created_at()
    created_by: Mapped[uuid.UUID] = mapped_column()


class DatasetQuery(Base):
    """A retrieval query against a dataset; recent ones keep a dataset from counting as unused."""

    __tablename__ = "dataset_queries"
    __table_args__ = (sa.Index(None, "dataset_id", "created_at"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    dataset_id: Mapped[uuid.UUID] = _dataset_fk(index=False)
    content: Mapped[str] = mapped_column(sa.Text)
    source: Mapped[DatasetQuerySource] = mapped_column(str_enum(DatasetQuerySource, name="source"))
    # No foreign key: a query log outlives the app that issued it.
    source_app_id: Mapped[uuid.UUID | None] = mapped_column()
    created_by_role: Mapped[CreatorUserRole] = mapped_column(
        str_enum(CreatorUserRole, name="created_by_role")
    )
    created_by: Mapped[uuid.UUID] = mapped_column()
    created_at: Mapped[datetime] = created_at()


class DatasetAutoDisableLog(Base):
    """A document disabled automatically for lack of use, until its workspace is notified."""

    __tablename__ = "dataset_auto_disable_logs"
    __table_args__ = (sa.Index(None, "tenant_id", "notified"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    tenant_id: Mapped[uuid.UUID] = tenant_fk(index=False)
    dataset_id: Mapped[uuid.UUID] = _dataset_fk()
    document_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("documents.id", ondelete="CASCADE"), index=True
    )
    notified: Mapped[bool] = mapped_column(server_default=sa.false())
    created_at: Mapped[datetime] = created_at()


class AppDatasetJoin(Base):
    """An app retrieving from a dataset."""

    __tablename__ = "app_dataset_joins"
    __table_args__ = (sa.UniqueConstraint("app_id", "dataset_id"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    app_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("apps.id", ondelete="CASCADE"))
    dataset_id: Mapped[uuid.UUID] = _dataset_fk()
    created_at: Mapped[datetime] = created_at()


class Embedding(Base):
    """Cached embedding of a text (by hash) for one model; shared by every workspace."""

    __tablename__ = "embeddings"
    __table_args__ = (
        sa.UniqueConstraint("model_name", "hash", "provider_name"),
        sa.Index(None, "created_at"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    model_name: Mapped[str] = mapped_column(
        sa.String(255), server_default=sa.text("'text-embedding-ada-002'")
    )
    #: Hex SHA-256 digest identifying the embedded text.
    hash: Mapped[str] = mapped_column(sa.String(64))
    #: The serialised vector (Dify pickles a ``list[float]``).
    embedding: Mapped[bytes] = mapped_column(sa.LargeBinary)
    created_at: Mapped[datetime] = created_at()
    provider_name: Mapped[str] = mapped_column(sa.String(255), server_default=sa.text("''"))
    #: Tokens of the text, so that a text read from the cache counts what it cost (``NULL`` on
    #: rows cached before it was recorded: learnt at their next use).
    tokens: Mapped[int | None] = mapped_column()
