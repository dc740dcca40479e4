"""The retrieval indexes kept in PostgreSQL: vectors (pgvector) and keywords (full-text search).

They replace Dify's external vector database and its ``dataset_keyword_tables`` JSON blob. Both
are written by the indexing tasks through :mod:`worker.domain.vectors` and
:mod:`worker.domain.keywords`, never through the ORM on the hot path.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from pgvector.sqlalchemy import Vector
from sqlalchemy.dialects.postgresql import ARRAY, TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column

from worker.domain.models.base import Base, created_at

#: Prefix of the per-dimension HNSW indexes, created at run time (see :class:`EmbeddingVector`).
HNSW_INDEX_PREFIX = "ix_embedding_vectors_hnsw_"
#: Largest dimension pgvector's HNSW accepts for ``vector``; larger vectors are searched exactly.
HNSW_MAX_DIMENSION = 2000


class EmbeddingVector(Base):
    """One node (segment, child chunk or annotation) of a vector collection and its embedding.

    ``embedding`` has no fixed dimension because every dataset may use another embedding model.
    pgvector can only build an HNSW index over a fixed dimension, so the store creates one partial
    expression index per dimension the first time it writes that dimension::

        CREATE INDEX ix_embedding_vectors_hnsw_<d> ON embedding_vectors
            USING hnsw ((embedding::vector(<d>)) vector_cosine_ops) WHERE dimension = <d>

    and searches with the same expression and predicate. Those indexes are not part of the
    migrations (nor of this model): which dimensions exist is data, not schema.
    """

    __tablename__ = "embedding_vectors"
    __table_args__ = (
        sa.UniqueConstraint("collection", "node_id"),
        sa.Index(None, "collection", "document_id"),
        # An app's vectors in a shared annotation collection (enable, disable and delete act on
        # them alone); queries spell the same expression, with the key as a literal.
        sa.Index(
            "ix_embedding_vectors_collection_app_id",
            "collection",
            sa.text("(metadata ->> 'app_id')"),
        ),
        # The per-dimension indexes rely on it: a row's cast to vector(<d>) must never fail.
        sa.CheckConstraint("vector_dims(embedding) = dimension", name="dimension"),
    )

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    #: Dify's collection name: ``Vector_index_<dataset id with _>_Node``, or an annotation
    #: collection shared by the apps using one embedding model.
    collection: Mapped[str] = mapped_column(sa.String(255))
    #: ``index_node_id`` of the segment, child chunk or annotation.
    node_id: Mapped[str] = mapped_column(sa.String(255))
    # No foreign key: annotation collections hold nodes that belong to no document.
    document_id: Mapped[uuid.UUID | None] = mapped_column()
    content: Mapped[str] = mapped_column(sa.Text)
    #: Dify's node metadata (``doc_id``, ``doc_hash``, ``document_id``, ``dataset_id``, ...).
    metadata_: Mapped[dict[str, Any]] = mapped_column(
        "metadata", server_default=sa.text("'{}'::jsonb")
    )
    #: Number of components of ``embedding``; selects the HNSW index.
    dimension: Mapped[int] = mapped_column(sa.Integer)
    embedding: Mapped[list[float]] = mapped_column(Vector())
    created_at: Mapped[datetime] = created_at()


class KeywordEntry(Base):
    """Keywords and full-text vector of one node of an economy (keyword-indexed) dataset.

    ``tsv`` is built with the ``simple`` configuration from jieba-segmented text, so Chinese
    words are lexemes as well as English ones.
    """

    __tablename__ = "keyword_index"
    __table_args__ = (
        sa.UniqueConstraint("dataset_id", "node_id"),
        sa.Index(None, "dataset_id", "document_id"),
        sa.Index(None, "tsv", postgresql_using="gin"),
    )

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    # Indexed by the unique constraint, which it leads.
    dataset_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("datasets.id", ondelete="CASCADE"))
    #: ``index_node_id`` of the segment.
    node_id: Mapped[str] = mapped_column(sa.String(255))
    # No foreign key, like the vectors: the index is rebuilt from the documents, not the reverse.
    document_id: Mapped[uuid.UUID | None] = mapped_column()
    #: Extracted keywords, lowercased (Dify's keyword table maps each one to its nodes).
    keywords: Mapped[list[str]] = mapped_column(ARRAY(sa.Text))
    tsv: Mapped[str] = mapped_column(TSVECTOR)
