"""mail deliveries

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mail_deliveries",
        sa.Column("id", sa.Uuid(), server_default=sa.text("uuidv7()"), nullable=False),
        sa.Column("job_id", sa.BigInteger(), nullable=False),
        sa.Column("mail_type", sa.String(length=64), nullable=False),
        sa.Column("recipient", sa.String(length=320), nullable=False),
        sa.Column("language", sa.String(length=16), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "sending",
                "sent",
                "retrying",
                "failed",
                name="status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("backend", sa.String(length=16), nullable=False),
        sa.Column("provider_message_id", sa.String(length=255), nullable=True),
        sa.Column("reply", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
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
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mail_deliveries")),
        sa.UniqueConstraint(
            "job_id", "recipient", name=op.f("uq_mail_deliveries_job_id_recipient")
        ),
    )
    op.create_index(
        "ix_mail_deliveries_created_at",
        "mail_deliveries",
        ["created_at"],
        unique=False,
        postgresql_using="brin",
    )
    op.create_index(
        op.f("ix_mail_deliveries_recipient"), "mail_deliveries", ["recipient"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_mail_deliveries_recipient"), table_name="mail_deliveries")
    op.drop_index(
        "ix_mail_deliveries_created_at", table_name="mail_deliveries", postgresql_using="brin"
    )
    op.drop_table("mail_deliveries")
