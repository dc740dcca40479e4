"""Segment tasks (queue ``dataset``): enable, disable, delete and import a document's chunks.

The single-segment toggles hold ``lock`` and ``queueing_lock`` ``segment:<id>`` (a segment is
"busy" while one waits or runs: :func:`worker.domain.segment_ops.busy.is_busy`); the batch
forms hold their document's lock. Every one acts on the rows as they are when it runs and is
safe to re-run: vectors are upserted or deleted by node id, imported rows have ids derived from
the job id. Transient failures retry under the indexing policy.
"""

from __future__ import annotations

from worker import queues, runtime
from worker.domain.pipeline import Pipeline
from worker.domain.segment_ops import imports, removal, toggle
from worker.domain.segment_ops.busy import SEGMENT_LOCK
from worker.jobs import task, will_retry
from worker.jobs.uow import UnitOfWork
from worker.tasks.indexing import DOCUMENT_LOCK, INDEXING_RETRY


def _pipeline() -> Pipeline:
    return runtime.current().pipeline


@task(
    name="segments.enable_segment_to_index",
    queue=queues.DATASET,
    retry=INDEXING_RETRY,
    lock=SEGMENT_LOCK,
    queueing_lock=SEGMENT_LOCK,
)
def enable_segment_to_index_task(segment_id: str, *, uow: UnitOfWork) -> str:
    """Index a segment if it is still enabled when the job ends; lock per segment; upserts."""
    outcome = toggle.enable_segments(uow, _pipeline(), [segment_id], retrying=will_retry)
    return next(iter(outcome.values()))


@task(
    name="segments.disable_segment_from_index",
    queue=queues.DATASET,
    retry=INDEXING_RETRY,
    lock=SEGMENT_LOCK,
    queueing_lock=SEGMENT_LOCK,
)
def disable_segment_from_index_task(segment_id: str, *, uow: UnitOfWork) -> str:
    """Drop a segment's vectors and keywords if it is still disabled; lock per segment."""
    outcome = toggle.disable_segments(uow, _pipeline(), [segment_id], retrying=will_retry)
    return next(iter(outcome.values()))


@task(
    name="segments.enable_segments_to_index",
    queue=queues.DATASET,
    retry=INDEXING_RETRY,
    lock=DOCUMENT_LOCK,
)
def enable_segments_to_index_task(
    segment_ids: list[str], dataset_id: str, document_id: str, *, uow: UnitOfWork
) -> dict[str, str]:
    """Index the listed segments still enabled; lock per document; upserts."""
    return toggle.enable_segments(uow, _pipeline(), segment_ids, document_id, retrying=will_retry)


@task(
    name="segments.disable_segments_from_index",
    queue=queues.DATASET,
    retry=INDEXING_RETRY,
    lock=DOCUMENT_LOCK,
)
def disable_segments_from_index_task(
    segment_ids: list[str], dataset_id: str, document_id: str, *, uow: UnitOfWork
) -> dict[str, str]:
    """Drop the index entries of the listed segments still disabled; lock per document."""
    return toggle.disable_segments(uow, _pipeline(), segment_ids, document_id, retrying=will_retry)


@task(
    name="segments.delete_segment_from_index",
    queue=queues.DATASET,
    retry=INDEXING_RETRY,
    lock=DOCUMENT_LOCK,
)
def delete_segment_from_index_task(
    index_node_ids: list[str],
    dataset_id: str,
    document_id: str,
    segment_ids: list[str] | None = None,
    child_node_ids: list[str] | None = None,
    *,
    uow: UnitOfWork,
) -> str:
    """Delete deleted segments' vectors (children too, by ``parent_id``) and keyword rows;
    lock per document; deleting nothing is success. ``segment_ids`` (1.14) is accepted."""
    return removal.delete_segments_from_index(
        uow, _pipeline(), index_node_ids, dataset_id, document_id, child_node_ids
    )


@task(
    name="segments.batch_create_segment_to_index",
    queue=queues.DATASET,
    retry=INDEXING_RETRY,
    lock=DOCUMENT_LOCK,
)
def batch_create_segment_to_index_task(
    job_id: str,
    content: list[dict[str, str]] | str,
    dataset_id: str,
    document_id: str,
    tenant_id: str,
    user_id: str,
    *,
    uow: UnitOfWork,
) -> str:
    """Import CSV rows as segments (``content``: the rows, or 1.14's upload file id); lock
    per document; ids from (job id, row), so a re-run inserts nothing twice."""
    return imports.batch_create(
        uow, _pipeline(), job_id=job_id, content=content, dataset_id=dataset_id,
        document_id=document_id, tenant_id=tenant_id, user_id=user_id, retrying=will_retry,
    )  # fmt: skip
