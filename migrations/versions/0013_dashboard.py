"""dashboard: queue pauses and action log (issue 16)

Placeholder reserved for the work of this issue; it changes nothing yet.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01
"""

from __future__ import annotations

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
