"""procrastinate 3.10.0 schema and the pgvector extension

procrastinate's ``schema.sql`` is vendored in ``migrations/sql`` so that this step stays immutable:
upgrading procrastinate later adds revisions that run its shipped migration files, in order.

Revision ID: 0001
Revises:
Create Date: 2026-11-29
"""

from __future__ import annotations

from pathlib import Path

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SCHEMA_FILE = Path(__file__).resolve().parent.parent / "sql" / "procrastinate_03.10.00_schema.sql"


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS vector")
    # Run on the driver connection without parameters: the schema contains literal '%'
    # (RAISE ... %) that SQLAlchemy's execute would take for placeholders. Same transaction.
    driver_connection = op.get_bind().connection.driver_connection
    driver_connection.execute(SCHEMA_FILE.read_text(encoding="utf-8"))


def downgrade() -> None:
    raise NotImplementedError("the procrastinate schema is never dropped by a migration")
