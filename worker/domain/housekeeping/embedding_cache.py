"""Dify's ``clean_embedding_cache_task``: cached embeddings older than the cutoff, deleted in
set-based batches (Dify deleted them one row per statement)."""

from __future__ import annotations

import logging
from datetime import datetime

import sqlalchemy as sa

from worker.domain.models import Embedding
from worker.domain.uow import UnitOfWork

logger = logging.getLogger(__name__)

#: Rows deleted per transaction.
BATCH_SIZE = 1000


def clean(uow: UnitOfWork, *, before: datetime, batch_size: int = BATCH_SIZE) -> int:
    """Delete ``embeddings`` created before ``before``, ``batch_size`` per short transaction
    (oldest first, through the ``created_at`` index); return how many were deleted."""
    deleted = 0
    while True:
        oldest = (
            sa.select(Embedding.id)
            .where(Embedding.created_at < before)
            .order_by(Embedding.created_at)
            .limit(batch_size)
        )
        with uow.step() as session:
            batch = len(
                session.execute(
                    sa.delete(Embedding).where(Embedding.id.in_(oldest)).returning(Embedding.id)
                ).all()
            )
        deleted += batch
        if batch < batch_size:
            break
    logger.info(
        "embedding cache: %d row(s) created before %s deleted",
        deleted, before.isoformat(),
        extra={"action": "embedding_cache_cleaned", "deleted": deleted},
    )  # fmt: skip
    return deleted
