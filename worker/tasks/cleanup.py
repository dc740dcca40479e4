"""Document and dataset cleanup tasks (queue ``dataset``), and the deletions app code calls.

App code deletes through :func:`delete_dataset`, :func:`delete_document` or
:func:`delete_documents` in its own session: the rows go and the cleanup is deferred in the
same transaction. Each cleanup holds ``dataset:<id>:cleanup``, never touches a live row (it
retries while the row exists, then fails, deleting nothing), deletes in bounded batches, blobs
before rows, and is safe to re-run. The trailing ``upload_file_ids``/``image_file_ids``
arguments are the project's: a Dify-shaped call cannot name the files the cascade hid.
"""

from __future__ import annotations

from sqlalchemy import orm

from worker import queues, runtime
from worker.domain.cleanup import deletion, purge
from worker.domain.pipeline import Pipeline
from worker.jobs import Retry, task
from worker.jobs.uow import UnitOfWork

CLEANUP_LOCK = "dataset:{dataset_id}:cleanup"
#: A live row (its deletion not committed yet) is waited for 5+10+20+40+60 s, then the job
#: fails; storage or database hiccups retry in the same budget.
CLEANUP_RETRY = Retry(max_retries=5, default_retry_delay=5, backoff=2, max_delay=60)


def _pipeline() -> Pipeline:
    return runtime.current().pipeline


@task(
    name="cleanup.clean_dataset",
    queue=queues.DATASET,
    retry=CLEANUP_RETRY,
    lock=CLEANUP_LOCK,
    queueing_lock="dataset:{dataset_id}:clean",
)
def clean_dataset_task(
    dataset_id: str,
    tenant_id: str,
    indexing_technique: str | None,
    index_struct: str | None,
    collection_binding_id: str | None,
    doc_form: str | None,
    pipeline_id: str | None = None,
    upload_file_ids: list[str] | None = None,
    image_file_ids: list[str] | None = None,
    *,
    uow: UnitOfWork,
) -> str:
    """Delete a deleted dataset's vectors, keyword rows and files; lock per dataset; resumable."""
    files = [*(upload_file_ids or ()), *(image_file_ids or ())]
    return purge.clean_dataset(uow, _pipeline(), dataset_id, files)


@task(name="cleanup.clean_document", queue=queues.DATASET, retry=CLEANUP_RETRY, lock=CLEANUP_LOCK)
def clean_document_task(
    document_id: str,
    dataset_id: str,
    doc_form: str | None,
    file_id: str | None = None,
    image_file_ids: list[str] | None = None,
    *,
    uow: UnitOfWork,
) -> str:
    """Delete a deleted document's vectors, keyword rows and files; lock per dataset."""
    files = [*([file_id] if file_id else []), *(image_file_ids or ())]
    return purge.clean_documents(uow, _pipeline(), dataset_id, [document_id], files)


@task(
    name="cleanup.batch_clean_document",
    queue=queues.DATASET,
    retry=CLEANUP_RETRY,
    lock=CLEANUP_LOCK,
)
def batch_clean_document_task(
    document_ids: list[str],
    dataset_id: str,
    doc_form: str | None,
    file_ids: list[str],
    image_file_ids: list[str] | None = None,
    *,
    uow: UnitOfWork,
) -> str:
    """As ``clean_document_task`` for many documents of one dataset."""
    files = [*file_ids, *(image_file_ids or ())]
    return purge.clean_documents(uow, _pipeline(), dataset_id, document_ids, files)


@task(
    name="cleanup.clean_notion_document",
    queue=queues.DATASET,
    retry=CLEANUP_RETRY,
    lock=CLEANUP_LOCK,
)
def clean_notion_document_task(document_ids: list[str], dataset_id: str, *, uow: UnitOfWork) -> str:
    """Delete Notion documents no longer selected, index entries first; gone ones skipped."""
    return purge.clean_notion_documents(uow, _pipeline(), dataset_id, document_ids)


def delete_dataset(session: orm.Session, dataset_id: str) -> bool:
    """Delete a dataset and defer its cleanup, in ``session``'s transaction."""
    return deletion.delete_dataset(session, dataset_id, clean=clean_dataset_task)


def delete_document(session: orm.Session, document_id: str) -> bool:
    """Delete a document and defer its cleanup, in ``session``'s transaction."""
    return deletion.delete_document(session, document_id, clean=clean_document_task)


def delete_documents(session: orm.Session, dataset_id: str, document_ids: list[str]) -> list[str]:
    """Delete documents of a dataset and defer their cleanup, in ``session``'s transaction."""
    return deletion.delete_documents(
        session, dataset_id, document_ids, clean=batch_clean_document_task
    )
