"""scheduler ticks and the plugin check's last_checked_at

- ``scheduler_ticks``: one row per periodic job and scheduled time, inserted in the transaction
  that defers the job; its primary key makes a tick fire once however many schedulers compute
  it. Missed ticks are recorded too (``coalesced`` / ``skipped``).
- ``tenant_plugin_auto_upgrade_strategies.last_checked_at``: when the workspace's upgrade check
  was last deferred; a workspace is due once its time of day has passed since then, so a
  fleet that was down at that time still checks it that day, once.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "scheduler_ticks",
        sa.Column("job_name", sa.String(length=128), nullable=False),
        sa.Column("tick_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "outcome",
            sa.Enum(
                "deferred",
                "coalesced",
                "skipped",
                "already_queued",
                name="outcome",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "fired_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("procrastinate_job_id", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("job_name", "tick_at", name=op.f("pk_scheduler_ticks")),
    )
    op.create_index(
        "ix_scheduler_ticks_tick_at",
        "scheduler_ticks",
        ["tick_at"],
        unique=False,
        postgresql_using="brin",
    )
    op.add_column(
        "tenant_plugin_auto_upgrade_strategies",
        sa.Column("last_checked_at", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_column("tenant_plugin_auto_upgrade_strategies", "last_checked_at")
    op.drop_index("ix_scheduler_ticks_tick_at", table_name="scheduler_ticks")
    op.drop_table("scheduler_ticks")
