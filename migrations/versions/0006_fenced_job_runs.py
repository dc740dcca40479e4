"""fenced job runs and crash accounting

Columns of our own on ``procrastinate_jobs`` (procrastinate 3.10.0 is pinned; its functions read
and return the table's row type, so extra columns with defaults are transparent to them):

- ``runs``: how many times the job was fetched. A run is fenced by ``(id, runs)``: every write
  a run makes about its job is a compare-and-set on ``status = 'doing' AND runs = <its run>``,
  and the recovery re-queue is one too, so a run that was taken away writes nothing.
- ``run_started_at``: when the current (or last) run was fetched.
- ``lost_runs``: runs lost to a dead worker (not counted in ``attempts``: they do not consume
  the task's retry budget).
- ``run_alone``: the current run is isolated (its process runs nothing else meanwhile): a job
  that was lost once runs alone, so that a later loss can be blamed on it.
- ``blamed_runs``: lost runs during which the job ran alone: what the poison-job limit counts.
- ``interrupted_runs``: runs ended only by a broken database connection, re-run without using
  the retry budget.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE procrastinate_jobs
            ADD COLUMN runs integer NOT NULL DEFAULT 0,
            ADD COLUMN run_started_at timestamp with time zone,
            ADD COLUMN lost_runs integer NOT NULL DEFAULT 0,
            ADD COLUMN run_alone boolean NOT NULL DEFAULT false,
            ADD COLUMN blamed_runs integer NOT NULL DEFAULT 0,
            ADD COLUMN interrupted_runs integer NOT NULL DEFAULT 0
        """
    )
    # Jobs suspected of killing their worker wait here until a process can run them alone.
    op.execute(
        """
        CREATE INDEX procrastinate_jobs_suspects_idx
            ON procrastinate_jobs (priority DESC, id)
         WHERE status = 'todo' AND lost_runs > 0
        """
    )


def downgrade() -> None:
    op.execute("DROP INDEX procrastinate_jobs_suspects_idx")
    op.execute(
        """
        ALTER TABLE procrastinate_jobs
            DROP COLUMN runs,
            DROP COLUMN run_started_at,
            DROP COLUMN lost_runs,
            DROP COLUMN run_alone,
            DROP COLUMN blamed_runs,
            DROP COLUMN interrupted_runs
        """
    )
