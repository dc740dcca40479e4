"""Index operations on completed documents and datasets (queue ``dataset``): add, remove,
rebuild.

Each holds the document's lock (or the dataset's indexing lock) and is safe to re-run: vectors
are upserted by node id, and a removal of what is already gone changes nothing. Transient
failures retry under the indexing policy; the document is left as the user set it meanwhile.
"""

from __future__ import annotations

from worker import queues, runtime
from worker.domain import index_ops
from worker.jobs import task, will_retry
from worker.jobs.uow import UnitOfWork
from worker.tasks.indexing import DOCUMENT_LOCK, INDEXING_RETRY


@task(
    name="indexing.add_document_to_index",
    queue=queues.DATASET,
    retry=INDEXING_RETRY,
    lock="document:{dataset_document_id}",
)
def add_document_to_index_task(dataset_document_id: str, *, uow: UnitOfWork) -> str | None:
    """Re-enable a completed document: index its segments again; lock per document; upserts."""
    return index_ops.add_document_to_index(
        uow, runtime.current().pipeline, dataset_document_id, retrying=will_retry
    )


@task(
    name="indexing.remove_document_from_index",
    queue=queues.DATASET,
    retry=INDEXING_RETRY,
    lock=DOCUMENT_LOCK,
)
def remove_document_from_index_task(document_id: str, *, uow: UnitOfWork) -> str | None:
    """Disable a completed document: drop its vectors/keywords; lock per document; idempotent."""
    return index_ops.remove_document_from_index(
        uow, runtime.current().pipeline, document_id, retrying=will_retry
    )


@task(
    name="indexing.deal_dataset_vector_index",
    queue=queues.DATASET,
    retry=INDEXING_RETRY,
    lock="dataset:{dataset_id}:indexing",
)
def deal_dataset_vector_index_task(
    dataset_id: str, action: str, *, uow: UnitOfWork
) -> dict[str, str | None]:
    """Add, remove or rebuild a dataset's vectors; lock per dataset; upserts by node id."""
    return index_ops.deal_dataset_vector_index(
        uow, runtime.current().pipeline, dataset_id, action, retrying=will_retry
    )
