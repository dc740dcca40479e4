"""job statuses and the annotation vectors' app index

``job_statuses`` replaces Dify's polled Redis keys (annotation reply enable/disable, annotation
and segment CSV imports): one row per (Dify job id, kind), written with the job's transactions.
``ix_embedding_vectors_collection_app_id`` finds one app's vectors in a shared annotation
collection (enable, disable and delete touch those alone, never the collection).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "job_statuses",
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "waiting",
                "processing",
                "completed",
                "error",
                name="status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=True),
        sa.Column("target_id", sa.Uuid(), nullable=True),
        sa.Column("procrastinate_job_id", sa.BigInteger(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("job_id", "kind", name=op.f("pk_job_statuses")),
    )
    op.create_index("ix_job_statuses_finished_at", "job_statuses", ["finished_at"], unique=False)
    op.create_index(
        "ix_embedding_vectors_collection_app_id",
        "embedding_vectors",
        ["collection", sa.text("(metadata ->> 'app_id')")],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_embedding_vectors_collection_app_id", table_name="embedding_vectors")
    op.drop_index("ix_job_statuses_finished_at", table_name="job_statuses")
    op.drop_table("job_statuses")
