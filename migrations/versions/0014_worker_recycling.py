"""worker recycling: per-worker job count and memory (issue 17)

Columns of our own on ``procrastinate_workers`` (procrastinate 3.10.0 is pinned; its functions
insert with defaults and delete by id, so extra nullable or defaulted columns are transparent to
them), written by the worker when it registers and at every heartbeat, read by
``manage.py queues``:

- ``pid``, ``hostname``, ``queues``: which process this is and what it serves;
- ``jobs_run``: jobs the process ran since it started (a recycled process starts again at 0);
- ``rss_bytes``: its resident memory at the last heartbeat;
- ``max_jobs``, ``max_memory_mb``: its recycling limits (``WORKER_MAX_JOBS``,
  ``WORKER_MAX_MEMORY_MB``), NULL when off.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE procrastinate_workers
            ADD COLUMN pid integer,
            ADD COLUMN hostname text,
            ADD COLUMN queues text[],
            ADD COLUMN jobs_run bigint NOT NULL DEFAULT 0,
            ADD COLUMN rss_bytes bigint,
            ADD COLUMN max_jobs integer,
            ADD COLUMN max_memory_mb integer
        """
    )


def downgrade() -> None:
    op.execute(
        """
        ALTER TABLE procrastinate_workers
            DROP COLUMN pid,
            DROP COLUMN hostname,
            DROP COLUMN queues,
            DROP COLUMN jobs_run,
            DROP COLUMN rss_bytes,
            DROP COLUMN max_jobs,
            DROP COLUMN max_memory_mb
        """
    )
