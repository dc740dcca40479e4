"""Maintenance sweeps (queue ``dataset``): re-defer work that no job will finish.

Each sweep defers its follow-up jobs in its own transaction, with queueing locks, so running it
twice, or from two processes, never queues the same recovery twice.
"""

from __future__ import annotations

import logging

from worker import db, queues
from worker.config import STUCK_DOCUMENT_AFTER
from worker.domain import indexing
from worker.jobs import AlreadyEnqueued, task
from worker.tasks.indexing import RECOVER_QUEUEING_LOCK, recover_document_indexing_task

logger = logging.getLogger(__name__)


#: Documents in progress for longer than this (seconds) with no job are re-deferred.
STUCK_AFTER = STUCK_DOCUMENT_AFTER


def recover_stuck_documents(*, older_than: float = STUCK_AFTER) -> list[str]:
    """Defer ``recover_document_indexing_task`` for every stuck document; return their ids.

    Runs in one transaction: the scan and the deferrals commit together, and a document whose
    recovery already waits (queueing lock) is skipped.
    """
    deferred = []
    with db.session_scope() as session:
        for document_id, dataset_id, status in indexing.stuck_documents(
            session, older_than=older_than
        ):
            try:
                recover_document_indexing_task.apply_async(
                    args=(dataset_id, document_id),
                    queueing_lock=RECOVER_QUEUEING_LOCK.format(document_id=document_id),
                )
            except AlreadyEnqueued:
                continue
            logger.warning(
                "document %s was stuck in %s: recovery deferred",
                document_id,
                status,
                extra={"action": "document_recovery_deferred", "document_id": document_id},
            )
            deferred.append(document_id)
    return deferred


@task(
    name="indexing.recover_stuck_documents",
    queue=queues.DATASET,
    queueing_lock="indexing:recover_stuck_documents",
)
def recover_stuck_documents_task(older_than: float = STUCK_AFTER) -> list[str]:
    """Sweep: re-defer documents stuck in progress with no job; no lock; idempotent."""
    return recover_stuck_documents(older_than=older_than)
