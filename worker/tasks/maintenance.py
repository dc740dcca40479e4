"""Maintenance sweeps (queue ``dataset``): re-defer work that no job will finish.

Each sweep defers its follow-up jobs in its unit of work's session, with queueing locks: the scan
and the deferrals commit with the sweep's success, so running it twice, or from two processes,
never queues the same recovery twice.
"""

from __future__ import annotations

import logging

from worker import queues
from worker.config import STUCK_DOCUMENT_AFTER
from worker.domain import indexing
from worker.jobs import AlreadyEnqueued, Retry, task
from worker.jobs.uow import UnitOfWork
from worker.tasks.indexing import RECOVER_QUEUEING_LOCK, recover_document_indexing_task

logger = logging.getLogger(__name__)


#: Documents in progress for longer than this (seconds) with no job are re-deferred.
STUCK_AFTER = STUCK_DOCUMENT_AFTER
#: The sweep only reads and defers: what fails it is the database (a statement timeout, a
#: refused connection); it retries twice, 30 then 60 s later. A broken connection is re-run by
#: the runtime anyway, and the next scheduled sweep does the same work.
SWEEP_RETRY = Retry(max_retries=2, default_retry_delay=30, backoff=2, max_delay=300)


def recover_stuck_documents(uow: UnitOfWork, *, older_than: float = STUCK_AFTER) -> list[str]:
    """Defer ``recover_document_indexing_task`` for every stuck document; return their ids.

    The scan and the deferrals are written through ``uow.session``: they commit together with
    the caller's (the job's) success. A document whose recovery already waits (queueing lock) is
    skipped.
    """
    deferred = []
    session = uow.session
    for document_id, dataset_id, status in indexing.stuck_documents(session, older_than=older_than):
        try:
            recover_document_indexing_task.apply_async(
                args=(dataset_id, document_id),
                queueing_lock=RECOVER_QUEUEING_LOCK.format(document_id=document_id),
                session=session,
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
    retry=SWEEP_RETRY,
    queueing_lock="indexing:recover_stuck_documents",
)
def recover_stuck_documents_task(older_than: float = STUCK_AFTER, *, uow: UnitOfWork) -> list[str]:
    """Sweep: re-defer documents stuck in progress with no job; no lock; idempotent."""
    return recover_stuck_documents(uow, older_than=older_than)
