"""ops traces and periodic maintenance (issue 15)

- ``apps.tracing``: Dify's tracing switch of an app (``{"enabled", "tracing_provider"}``), jsonb.
- ``trace_app_config``: an app's configuration of a tracing provider (Dify's table), deleted
  with its app.
- ``trace_deliveries``: what became of each ops-trace payload file (``sent``, ``failed``,
  ``skipped``, or ``pending`` while its job runs or retries).
- ``queue_monitor_alerts``: per queue, whether the queue monitor's alert holds, so that it is
  mailed once when the threshold is crossed, not at every tick.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def _timestamps() -> list[sa.Column[object]]:
    return [
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
    ]


def upgrade() -> None:
    op.add_column(
        "apps", sa.Column("tracing", postgresql.JSONB(astext_type=sa.Text()), nullable=True)
    )
    op.create_table(
        "trace_app_config",
        sa.Column("id", sa.Uuid(), server_default=sa.text("uuidv7()"), nullable=False),
        sa.Column("app_id", sa.Uuid(), nullable=False),
        sa.Column("tracing_provider", sa.String(length=255), nullable=True),
        sa.Column("tracing_config", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("is_active", sa.Boolean(), server_default=sa.true(), nullable=False),
        *_timestamps(),
        sa.ForeignKeyConstraint(
            ["app_id"],
            ["apps.id"],
            name=op.f("fk_trace_app_config_app_id_apps"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trace_app_config")),
    )
    op.create_index(
        op.f("ix_trace_app_config_app_id"), "trace_app_config", ["app_id"], unique=False
    )
    op.create_table(
        "trace_deliveries",
        sa.Column("file_id", sa.String(length=64), nullable=False),
        sa.Column("app_id", sa.Uuid(), nullable=False),
        sa.Column("provider", sa.String(length=255), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "sent",
                "failed",
                "skipped",
                name="status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("events", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("job_id", sa.BigInteger(), nullable=True),
        *_timestamps(),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("file_id", name=op.f("pk_trace_deliveries")),
    )
    op.create_index(
        op.f("ix_trace_deliveries_app_id"), "trace_deliveries", ["app_id"], unique=False
    )
    op.create_index(
        "ix_trace_deliveries_created_at",
        "trace_deliveries",
        ["created_at"],
        unique=False,
        postgresql_using="brin",
    )
    op.create_table(
        "queue_monitor_alerts",
        sa.Column("queue_name", sa.String(length=128), nullable=False),
        sa.Column("alerting", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("waiting", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("oldest_ready_seconds", sa.Float(), nullable=True),
        sa.Column("alerted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cleared_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("queue_name", name=op.f("pk_queue_monitor_alerts")),
    )


def downgrade() -> None:
    op.drop_table("queue_monitor_alerts")
    op.drop_index("ix_trace_deliveries_created_at", table_name="trace_deliveries")
    op.drop_index(op.f("ix_trace_deliveries_app_id"), table_name="trace_deliveries")
    op.drop_table("trace_deliveries")
    op.drop_index(op.f("ix_trace_app_config_app_id"), table_name="trace_app_config")
    op.drop_table("trace_app_config")
    op.drop_column("apps", "tracing")
