"""vector and keyword index

``embedding_vectors`` holds every vector collection (pgvector, no fixed dimension: one HNSW
partial index per dimension is created at run time by ``worker.domain.vectors``);
``keyword_index`` holds the keywords and full-text vectors of economy datasets.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "embedding_vectors",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("collection", sa.String(length=255), nullable=False),
        sa.Column("node_id", sa.String(length=255), nullable=False),
        # No foreign key: annotation collections hold nodes that belong to no document.
        sa.Column("document_id", sa.Uuid(), nullable=True),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column(
            "metadata",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("dimension", sa.Integer(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_embedding_vectors")),
        sa.UniqueConstraint(
            "collection", "node_id", name=op.f("uq_embedding_vectors_collection_node_id")
        ),
    )
    # pgvector's type without a dimension (Alembic cannot render it without importing pgvector).
    op.execute("ALTER TABLE embedding_vectors ADD COLUMN embedding vector NOT NULL")
    op.execute(
        "ALTER TABLE embedding_vectors ADD CONSTRAINT ck_embedding_vectors_dimension"
        " CHECK (vector_dims(embedding) = dimension)"
    )
    op.create_index(
        op.f("ix_embedding_vectors_collection_document_id"),
        "embedding_vectors",
        ["collection", "document_id"],
        unique=False,
    )

    op.create_table(
        "keyword_index",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("dataset_id", sa.Uuid(), nullable=False),
        sa.Column("node_id", sa.String(length=255), nullable=False),
        sa.Column("document_id", sa.Uuid(), nullable=True),
        sa.Column("keywords", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("tsv", postgresql.TSVECTOR(), nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["datasets.id"],
            name=op.f("fk_keyword_index_dataset_id_datasets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_keyword_index")),
        sa.UniqueConstraint(
            "dataset_id", "node_id", name=op.f("uq_keyword_index_dataset_id_node_id")
        ),
    )
    op.create_index(
        op.f("ix_keyword_index_dataset_id_document_id"),
        "keyword_index",
        ["dataset_id", "document_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_keyword_index_tsv"), "keyword_index", ["tsv"], unique=False, postgresql_using="gin"
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_keyword_index_tsv"), table_name="keyword_index")
    op.drop_index(op.f("ix_keyword_index_dataset_id_document_id"), table_name="keyword_index")
    op.drop_table("keyword_index")
    op.drop_index(
        op.f("ix_embedding_vectors_collection_document_id"), table_name="embedding_vectors"
    )
    # Takes the run-time HNSW indexes with it.
    op.drop_table("embedding_vectors")
