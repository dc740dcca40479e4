"""How far a long job got: the project's own table, printed by ``manage.py jobs show``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from worker.domain.models.base import Base, updated_at


class JobProgress(Base):
    """How far a long job got, written with each of its steps; ``jobs show`` prints it.

    The project's own: any task may record progress here (the app deletion does). No foreign
    key to ``procrastinate_jobs`` (not part of these models); a job that succeeds deletes its
    row in its final transaction.
    """

    __tablename__ = "job_progress"

    job_id: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)
    progress: Mapped[dict[str, Any]] = mapped_column(server_default=sa.text("'{}'::jsonb"))
    updated_at: Mapped[datetime] = updated_at()
