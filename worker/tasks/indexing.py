"""Document indexing tasks (queue ``dataset``; ``priority_dataset`` for paying tenants).

Every task holds ``lock="document:<id>"`` (or the tenant's indexing lock for batches), so two
tasks never work on one document at once, and every one is safe to re-run: the service resumes
by the document's status and node ids are stable, so nothing is indexed twice. Each hands its
job's unit of work to one service, with :func:`~worker.jobs.will_retry` so that a failure the
job will retry leaves its document in progress instead of ``error``.
"""

from __future__ import annotations

from worker import app, queues, runtime
from worker.domain import indexing, notion_sync, pipeline
from worker.jobs import retry, task, will_retry
from worker.jobs.uow import UnitOfWork

DOCUMENT_LOCK = "document:{document_id}"
#: At most one waiting recovery per document.
RECOVER_QUEUEING_LOCK = "document:{document_id}:recover"
#: At most one waiting sync per document (Dify's ``document_{id}_is_sync``).
SYNC_QUEUEING_LOCK = "document:{document_id}:sync"

#: Transient failures (embedding endpoint, Notion or website answering HTTP 429/5xx or timing
#: out, refused connections, database errors) retry 3 times after 10, 30 and 90 s: rate limits
#: and overloads of an embedding API clear in that time, and a waiting retry holds its lock
#: (the tenant's or dataset's later indexing jobs wait behind it), so the whole budget stays
#: near 2 minutes. A longer outage ends the documents in ``error``, for the user to retry.
INDEXING_RETRY = retry.Retry(max_retries=3, default_retry_delay=10, backoff=3, max_delay=600)


@task(
    name="indexing.document_indexing",
    queue=queues.DATASET,
    retry=INDEXING_RETRY,
    lock="dataset:{dataset_id}:indexing",
)
def document_indexing_task(
    dataset_id: str, document_ids: list[str], *, uow: UnitOfWork
) -> dict[str, str | None]:
    """Index new documents of a dataset; lock per dataset; re-run resumes each by status."""
    return indexing.index_documents(uow, _pipeline(), document_ids, retrying=will_retry)


@task(
    name="indexing.normal_document_indexing",
    queue=queues.DATASET,
    retry=INDEXING_RETRY,
    lock="tenant:{tenant_id}:document_indexing",
)
def normal_document_indexing_task(
    tenant_id: str, dataset_id: str, document_ids: list[str], *, uow: UnitOfWork
) -> dict[str, str | None]:
    """Index documents, one tenant at a time (Dify's tenant queue); re-run resumes by status."""
    return indexing.index_documents(uow, _pipeline(), document_ids, retrying=will_retry)


@task(
    name="indexing.priority_document_indexing",
    queue=queues.PRIORITY_DATASET,
    retry=INDEXING_RETRY,
    lock="tenant:{tenant_id}:document_indexing",
)
def priority_document_indexing_task(
    tenant_id: str, dataset_id: str, document_ids: list[str], *, uow: UnitOfWork
) -> dict[str, str | None]:
    """As ``normal_document_indexing_task``, on the priority queue."""
    return indexing.index_documents(uow, _pipeline(), document_ids, retrying=will_retry)


@task(
    name="indexing.duplicate_document_indexing",
    queue=queues.DATASET,
    retry=INDEXING_RETRY,
    lock="dataset:{dataset_id}:indexing",
)
def duplicate_document_indexing_task(
    dataset_id: str, document_ids: list[str], *, uow: UnitOfWork
) -> dict[str, str | None]:
    """Re-index replaced documents from their source; old segments and vectors are replaced."""
    return indexing.index_documents(
        uow, _pipeline(), document_ids, restart=True, retrying=will_retry
    )


@task(
    name="indexing.document_indexing_update",
    queue=queues.DATASET,
    retry=INDEXING_RETRY,
    lock=DOCUMENT_LOCK,
)
def document_indexing_update_task(
    dataset_id: str, document_id: str, *, uow: UnitOfWork
) -> str | None:
    """Re-index a document whose source or rule changed; lock per document; restart-safe."""
    return indexing.index_document(uow, _pipeline(), document_id, restart=True, retrying=will_retry)


@task(
    name="indexing.retry_document_indexing",
    queue=queues.DATASET,
    retry=INDEXING_RETRY,
    lock="dataset:{dataset_id}:retry",
    # Dify's document_{id}_is_retried: a second click while a retry waits is refused
    queueing_lock="dataset:{dataset_id}:retry",
)
def retry_document_indexing_task(
    dataset_id: str, document_ids: list[str], user_id: str | None = None, *, uow: UnitOfWork
) -> dict[str, str | None]:
    """Index failed documents again from their source; lock per dataset; restart-safe.
    ``user_id`` (Dify 1.14's) is optional: seed-era callers pass two arguments."""
    return indexing.index_documents(
        uow, _pipeline(), document_ids, restart=True, retrying=will_retry
    )


@task(
    name="indexing.recover_document_indexing",
    queue=queues.DATASET,
    retry=INDEXING_RETRY,
    lock=DOCUMENT_LOCK,
)
def recover_document_indexing_task(
    dataset_id: str, document_id: str, *, uow: UnitOfWork
) -> str | None:
    """Resume a document by its status (after a pause or a crash); lock per document."""
    return indexing.index_document(uow, _pipeline(), document_id, retrying=will_retry)


@task(
    name="indexing.sync_website_document",
    queue=queues.DATASET,
    retry=INDEXING_RETRY,
    lock=DOCUMENT_LOCK,
    queueing_lock=SYNC_QUEUEING_LOCK,
)
def sync_website_document_indexing_task(
    dataset_id: str, document_id: str, *, uow: UnitOfWork
) -> str | None:
    """Crawl a website document again and re-index it; lock per document; restart-safe."""
    return indexing.index_document(uow, _pipeline(), document_id, restart=True, retrying=will_retry)


@task(
    name="indexing.document_indexing_sync",
    queue=queues.DATASET,
    retry=INDEXING_RETRY,
    lock=DOCUMENT_LOCK,
    queueing_lock=SYNC_QUEUEING_LOCK,
)
def document_indexing_sync_task(
    dataset_id: str, document_id: str, *, uow: UnitOfWork
) -> str | None:
    """Re-import a Notion page if it changed (no-op otherwise); lock per document."""
    return notion_sync.sync_notion_document(uow, _pipeline(), document_id, retrying=will_retry)


def _pipeline() -> pipeline.Pipeline:
    return runtime.current().pipeline
