"""tokens of cached embeddings

``embeddings.tokens``: the tokens of the cached text, so that a text embedded from the cache (a
document indexed again, the same text in another dataset or workspace) counts the tokens it cost
the first time. Rows cached earlier stay ``NULL`` and learn it at their next use.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("embeddings", sa.Column("tokens", sa.Integer(), nullable=True))


def downgrade() -> None:
    op.drop_column("embeddings", "tokens")
