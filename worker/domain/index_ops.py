"""Adding completed documents to the index, removing them, and rebuilding a dataset's index.

Dify's ``add_document_to_index_task`` (re-enable / un-archive), ``remove_document_from_index_task``
(disable / archive) and ``deal_dataset_vector_index_task`` (technique or embedding model changed).
Embedding runs with no transaction open; each batch's vectors commit in a short step of the job's
unit of work, so a re-run after a crash upserts the same node ids and never duplicates a vector.
The writes that finish an operation (segments enabled or disabled) go through ``uow.session``
and commit with the job's success. A failure the job will retry (``retrying``) leaves the
document as the user set it, with a ``retrying:`` note; any other failure is undone or recorded
as before.
"""

from __future__ import annotations

import enum
import logging
import uuid

import sqlalchemy as sa
from sqlalchemy import orm

from worker.domain import indexing, segments, sources
from worker.domain.errors import DomainError, PermanentError
from worker.domain.indexing import Retrying, never
from worker.domain.models import (
    DatasetAutoDisableLog,
    Document,
    DocumentSegment,
    IndexingStatus,
    SegmentStatus,
)
from worker.domain.pipeline import Pipeline, Source
from worker.domain.uow import UnitOfWork

logger = logging.getLogger(__name__)


class VectorIndexAction(enum.StrEnum):
    """What ``deal_dataset_vector_index_task`` does to a dataset's vectors."""

    #: Index every completed, enabled, unarchived document (technique became high quality).
    ADD = "add"
    #: Drop the dataset's vector collection (technique became economy).
    REMOVE = "remove"
    #: Drop the collection and index every such document again (embedding model changed).
    UPDATE = "update"


def add_document_to_index(
    uow: UnitOfWork, p: Pipeline, document_id: str, *, retrying: Retrying = never
) -> str | None:
    """Index a completed document's segments again and enable them.

    Parameters
    ----------
    retrying:
        Whether the job will run again after a failure: the document is then left enabled.

    Raises
    ------
    DomainError
        After disabling the document and recording the error on it (unless retried).
    """
    source = _completed_source(uow, document_id)
    if source is None:
        return None
    try:
        _reindex_segments(uow, p, source, enabled_only=False)
        session = uow.session  # the job's own writes: they commit with its success
        session.execute(
            sa.delete(DatasetAutoDisableLog).where(
                DatasetAutoDisableLog.document_id == source.document_id
            )
        )
        session.execute(
            sa.update(DocumentSegment)
            .where(DocumentSegment.document_id == source.document_id)
            .values(enabled=True, disabled_at=None, disabled_by=None)
        )
        indexing.clear_retry_note(session, source.document_id)
    except Exception as exc:
        if not retrying(exc):
            uow.rollback()
            with uow.step() as session:
                session.execute(
                    sa.update(Document)
                    .where(Document.id == source.document_id)
                    .values(enabled=False, disabled_at=indexing.now())
                )
        indexing.fail(uow, document_id, exc, retrying=retrying)
        raise
    return IndexingStatus.COMPLETED.value


def remove_document_from_index(
    uow: UnitOfWork, p: Pipeline, document_id: str, *, retrying: Retrying = never
) -> str | None:
    """Delete a completed document's vectors and keywords and disable its segments.

    Parameters
    ----------
    retrying:
        Whether the job will run again after a failure: the document is then left disabled.

    Raises
    ------
    DomainError
        After re-enabling the document (unless archived, or retried): the user's toggle is
        rolled back.
    """
    source = _completed_source(uow, document_id)
    if source is None:
        return None
    try:
        session = uow.session  # the job's own writes: they commit with its success
        _drop_document_index(p, session, source)
        disabled_by = session.scalar(
            sa.select(Document.disabled_by).where(Document.id == source.document_id)
        )
        session.execute(
            sa.update(DocumentSegment)
            .where(DocumentSegment.document_id == source.document_id)
            .values(enabled=False, disabled_at=indexing.now(), disabled_by=disabled_by)
        )
        indexing.clear_retry_note(session, source.document_id)
    except Exception as exc:
        _undo_remove(uow, source, exc, retried=retrying(exc))
        raise
    return "removed"


def _undo_remove(uow: UnitOfWork, source: Source, exc: BaseException, *, retried: bool) -> None:
    uow.rollback()  # the job's writes would roll back with its failure anyway
    document = Document.id == source.document_id
    with uow.step() as session:
        if retried:
            note = indexing.RETRY_NOTE + indexing.reason(exc)
            session.execute(sa.update(Document).where(document).values(error=note))
        else:
            session.execute(
                sa.update(Document)
                .where(document, Document.archived.is_(False))
                .values(enabled=True, disabled_at=None, disabled_by=None)
            )
    logger.warning(
        "removing document %s from the index failed%s: %s",
        source.document_id,
        ", to be retried" if retried else "",
        indexing.reason(exc),
        extra={"action": "index_remove_failed", "document_id": str(source.document_id)},
    )


def deal_dataset_vector_index(
    uow: UnitOfWork, p: Pipeline, dataset_id: str, action: str, *, retrying: Retrying = never
) -> dict[str, str | None]:
    """Add, remove or rebuild a dataset's vectors; each document records its own outcome.

    Parameters
    ----------
    action:
        A :class:`VectorIndexAction` value.
    retrying:
        Whether the job will run again after a failure: such documents stay ``completed``.

    Raises
    ------
    PermanentError
        Unknown action, or (at the end) naming every document that failed for good.
    TransientError
        At the end, when some document's failure will be retried.
    """
    try:
        chosen = VectorIndexAction(action)
    except ValueError:
        raise PermanentError(
            f"action {action!r} is not one of {', '.join(VectorIndexAction)}"
        ) from None
    dataset = sources.as_uuid(dataset_id, what="dataset id")
    collection = p.vectors.collection_name(str(dataset))
    with uow.step() as session:
        if chosen is not VectorIndexAction.ADD:
            p.vectors.delete_collection(session, collection)
        if chosen is VectorIndexAction.REMOVE:
            return {}
        document_ids = _eligible(session, dataset)
    return indexing.each_document(
        document_ids, lambda d: _rebuild_document(uow, p, d, retrying), retrying=retrying
    )


def _eligible(session: orm.Session, dataset_id: uuid.UUID) -> list[str]:
    """Completed, enabled, unarchived documents. Unlike Dify, they stay ``completed`` while
    their vectors are rebuilt: a crashed rebuild's re-run then finds every one of them again
    (Dify's flip to ``indexing`` would hide the unfinished ones from it)."""
    return [
        str(i)
        for i in session.scalars(
            sa.select(Document.id).where(
                Document.dataset_id == dataset_id,
                Document.indexing_status == IndexingStatus.COMPLETED,
                Document.enabled.is_(True),
                Document.archived.is_(False),
            )
        )
    ]


def _rebuild_document(
    uow: UnitOfWork, p: Pipeline, document_id: str, retrying: Retrying
) -> str | None:
    loaded = sources.load_if_exists(uow, document_id, purpose="rebuild")
    if loaded is None:
        return None
    source, _ = loaded
    try:
        _reindex_segments(uow, p, source, enabled_only=True)
    except DomainError as exc:
        indexing.fail(uow, document_id, exc, retrying=retrying)
        raise
    with uow.step() as session:
        indexing.clear_retry_note(session, source.document_id)
    return IndexingStatus.COMPLETED.value


def _completed_source(uow: UnitOfWork, document_id: str) -> Source | None:
    loaded = sources.load_if_exists(uow, document_id, purpose="change in the index")
    if loaded is None:
        return None
    source, status = loaded
    if status is not IndexingStatus.COMPLETED:
        logger.info(
            "document %s is %s, not completed: its index is left alone",
            document_id,
            status.value,
            extra={"action": "index_op_skipped_status", "document_id": document_id},
        )
        return None
    return source


def _reindex_segments(uow: UnitOfWork, p: Pipeline, source: Source, *, enabled_only: bool) -> None:
    """Embed and upsert the document's completed segments, a step per batch."""
    after = -1
    while True:
        with uow.step() as session:
            query = sa.select(DocumentSegment).where(
                DocumentSegment.document_id == source.document_id,
                DocumentSegment.status == SegmentStatus.COMPLETED,
                DocumentSegment.position > after,
            )
            if enabled_only:
                query = query.where(DocumentSegment.enabled.is_(True))
            batch = list(
                session.scalars(query.order_by(DocumentSegment.position).limit(p.batch_size))
            )
            nodes = segments.nodes_of(session, source, batch)
        if not batch:
            return
        after = batch[-1].position
        _, vectors = segments.embed_nodes(p, source, nodes)  # no transaction open
        with uow.step() as session:
            segments.write_index(p, session, source, batch, vectors)


def _drop_document_index(p: Pipeline, session: orm.Session, source: Source) -> None:
    collection = p.vectors.collection_name(str(source.dataset_id))
    p.vectors.delete_document(session, collection, str(source.document_id))
    p.keywords.delete_document(session, str(source.dataset_id), str(source.document_id))
