"""Document indexing tasks (queue ``dataset``; ``priority_dataset`` for paying tenants).

Every task holds ``lock="document:<id>"`` (or the tenant's indexing lock for batches), so two
tasks never work on one document at once, and every one is safe to re-run: the service resumes
by the document's status and node ids are stable, so nothing is indexed twice.
"""

from __future__ import annotations

from worker import queues, runtime
from worker.domain import index_ops, indexing
from worker.jobs import task

DOCUMENT_LOCK = "document:{document_id}"
#: At most one waiting recovery per document.
RECOVER_QUEUEING_LOCK = "document:{document_id}:recover"
#: At most one waiting sync per document (Dify's ``document_{id}_is_sync``).
SYNC_QUEUEING_LOCK = "document:{document_id}:sync"


@task(name="indexing.document_indexing", queue=queues.DATASET, lock="dataset:{dataset_id}:indexing")
def document_indexing_task(dataset_id: str, document_ids: list[str]) -> dict[str, str | None]:
    """Index new documents of a dataset; lock per dataset; re-run resumes each by status."""
    return indexing.index_documents(runtime.current().pipeline, document_ids)


@task(
    name="indexing.normal_document_indexing",
    queue=queues.DATASET,
    lock="tenant:{tenant_id}:document_indexing",
)
def normal_document_indexing_task(
    tenant_id: str, dataset_id: str, document_ids: list[str]
) -> dict[str, str | None]:
    """Index documents, one tenant at a time (Dify's tenant queue); re-run resumes by status."""
    return indexing.index_documents(runtime.current().pipeline, document_ids)


@task(
    name="indexing.priority_document_indexing",
    queue=queues.PRIORITY_DATASET,
    lock="tenant:{tenant_id}:document_indexing",
)
def priority_document_indexing_task(
    tenant_id: str, dataset_id: str, document_ids: list[str]
) -> dict[str, str | None]:
    """As ``normal_document_indexing_task``, on the priority queue."""
    return indexing.index_documents(runtime.current().pipeline, document_ids)


@task(
    name="indexing.duplicate_document_indexing",
    queue=queues.DATASET,
    lock="dataset:{dataset_id}:indexing",
)
def duplicate_document_indexing_task(
    dataset_id: str, document_ids: list[str]
) -> dict[str, str | None]:
    """Re-index replaced documents from their source; old segments and vectors are replaced."""
    return indexing.index_documents(runtime.current().pipeline, document_ids, restart=True)


@task(name="indexing.document_indexing_update", queue=queues.DATASET, lock=DOCUMENT_LOCK)
def document_indexing_update_task(dataset_id: str, document_id: str) -> str | None:
    """Re-index a document whose source or rule changed; lock per document; restart-safe."""
    return indexing.index_document(runtime.current().pipeline, document_id, restart=True)


@task(
    name="indexing.retry_document_indexing",
    queue=queues.DATASET,
    lock="dataset:{dataset_id}:retry",
    # Dify's document_{id}_is_retried: a second click while a retry waits is refused
    queueing_lock="dataset:{dataset_id}:retry",
)
def retry_document_indexing_task(
    dataset_id: str, document_ids: list[str], user_id: str
) -> dict[str, str | None]:
    """Index failed documents again from their source; lock per dataset; restart-safe."""
    return indexing.index_documents(runtime.current().pipeline, document_ids, restart=True)


@task(name="indexing.recover_document_indexing", queue=queues.DATASET, lock=DOCUMENT_LOCK)
def recover_document_indexing_task(dataset_id: str, document_id: str) -> str | None:
    """Resume a document by its status (after a pause or a crash); lock per document."""
    return indexing.index_document(runtime.current().pipeline, document_id)


@task(
    name="indexing.sync_website_document",
    queue=queues.DATASET,
    lock=DOCUMENT_LOCK,
    queueing_lock=SYNC_QUEUEING_LOCK,
)
def sync_website_document_indexing_task(dataset_id: str, document_id: str) -> str | None:
    """Crawl a website document again and re-index it; lock per document; restart-safe."""
    return indexing.index_document(runtime.current().pipeline, document_id, restart=True)


@task(
    name="indexing.document_indexing_sync",
    queue=queues.DATASET,
    lock=DOCUMENT_LOCK,
    queueing_lock=SYNC_QUEUEING_LOCK,
)
def document_indexing_sync_task(dataset_id: str, document_id: str) -> str | None:
    """Re-import a Notion page if it changed (no-op otherwise); lock per document."""
    return indexing.sync_notion_document(runtime.current().pipeline, document_id)


@task(
    name="indexing.add_document_to_index",
    queue=queues.DATASET,
    lock="document:{dataset_document_id}",
)
def add_document_to_index_task(dataset_document_id: str) -> str | None:
    """Re-enable a completed document: index its segments again; lock per document; upserts."""
    return index_ops.add_document_to_index(runtime.current().pipeline, dataset_document_id)


@task(name="indexing.remove_document_from_index", queue=queues.DATASET, lock=DOCUMENT_LOCK)
def remove_document_from_index_task(document_id: str) -> str | None:
    """Disable a completed document: drop its vectors/keywords; lock per document; idempotent."""
    return index_ops.remove_document_from_index(runtime.current().pipeline, document_id)


@task(
    name="indexing.deal_dataset_vector_index",
    queue=queues.DATASET,
    lock="dataset:{dataset_id}:indexing",
)
def deal_dataset_vector_index_task(dataset_id: str, action: str) -> dict[str, str | None]:
    """Add, remove or rebuild a dataset's vectors; lock per dataset; upserts by node id."""
    return index_ops.deal_dataset_vector_index(runtime.current().pipeline, dataset_id, action)
