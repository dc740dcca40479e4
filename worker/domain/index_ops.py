"""Adding completed documents to the index, removing them, and rebuilding a dataset's index.

Dify's ``add_document_to_index_task`` (re-enable / un-archive), ``remove_document_from_index_task``
(disable / archive) and ``deal_dataset_vector_index_task`` (technique or embedding model changed).
Embedding runs outside transactions; each document's writes commit in one short transaction, so a
re-run after a crash upserts the same node ids and never duplicates a vector.
"""

from __future__ import annotations

import enum
import logging
import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy import orm

from worker import db
from worker.domain import indexing, sources
from worker.domain.errors import DomainError, PermanentError
from worker.domain.models import (
    DatasetAutoDisableLog,
    Document,
    DocumentSegment,
    IndexingStatus,
    SegmentStatus,
)
from worker.domain.pipeline import Pipeline, Source

logger = logging.getLogger(__name__)


class VectorIndexAction(enum.StrEnum):
    """What ``deal_dataset_vector_index_task`` does to a dataset's vectors."""

    #: Index every completed, enabled, unarchived document (technique became high quality).
    ADD = "add"
    #: Drop the dataset's vector collection (technique became economy).
    REMOVE = "remove"
    #: Drop the collection and index every such document again (embedding model changed).
    UPDATE = "update"


def add_document_to_index(p: Pipeline, document_id: str) -> str | None:
    """Index a completed document's segments again and enable them.

    Raises
    ------
    DomainError
        After disabling the document and recording the error on it.
    """
    loaded = _completed_source(document_id)
    if loaded is None:
        return None
    try:
        _reindex_segments(p, loaded, enabled_only=False)
        with db.session_scope() as session:  # joins the job's transaction
            session.execute(
                sa.delete(DatasetAutoDisableLog).where(
                    DatasetAutoDisableLog.document_id == loaded.document_id
                )
            )
            session.execute(
                sa.update(DocumentSegment)
                .where(DocumentSegment.document_id == loaded.document_id)
                .values(enabled=True, disabled_at=None, disabled_by=None)
            )
    except Exception as exc:
        with db.session_scope(new=True) as session:
            session.execute(
                sa.update(Document)
                .where(Document.id == loaded.document_id)
                .values(enabled=False, disabled_at=indexing.now())
            )
        indexing.fail(document_id, exc)
        raise
    return IndexingStatus.COMPLETED.value


def remove_document_from_index(p: Pipeline, document_id: str) -> str | None:
    """Delete a completed document's vectors and keywords and disable its segments.

    Raises
    ------
    DomainError
        After re-enabling the document (unless archived): the user's toggle is rolled back.
    """
    loaded = _completed_source(document_id)
    if loaded is None:
        return None
    try:
        with db.session_scope() as session:  # joins the job's transaction
            _drop_document_index(p, session, loaded)
            disabled_by = session.scalar(
                sa.select(Document.disabled_by).where(Document.id == loaded.document_id)
            )
            session.execute(
                sa.update(DocumentSegment)
                .where(DocumentSegment.document_id == loaded.document_id)
                .values(enabled=False, disabled_at=indexing.now(), disabled_by=disabled_by)
            )
    except Exception:
        with db.session_scope(new=True) as session:
            session.execute(
                sa.update(Document)
                .where(Document.id == loaded.document_id, Document.archived.is_(False))
                .values(enabled=True, disabled_at=None, disabled_by=None)
            )
        raise
    return "removed"


def deal_dataset_vector_index(p: Pipeline, dataset_id: str, action: str) -> dict[str, str | None]:
    """Add, remove or rebuild a dataset's vectors; each document records its own outcome.

    Raises
    ------
    PermanentError
        Unknown action, or (at the end) naming every document that failed.
    """
    try:
        chosen = VectorIndexAction(action)
    except ValueError:
        raise PermanentError(
            f"action {action!r} is not one of {', '.join(VectorIndexAction)}"
        ) from None
    dataset = sources.as_uuid(dataset_id, what="dataset id")
    collection = p.vectors.collection_name(str(dataset))
    with db.session_scope(new=True) as session:
        if chosen is not VectorIndexAction.ADD:
            p.vectors.delete_collection(session, collection)
        if chosen is VectorIndexAction.REMOVE:
            return {}
        document_ids = _eligible(session, dataset)
    return indexing.each_document(document_ids, lambda d: _rebuild_document(p, d))


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


def _rebuild_document(p: Pipeline, document_id: str) -> str | None:
    loaded = sources.load_if_exists(document_id, purpose="rebuild")
    if loaded is None:
        return None
    source, _ = loaded
    try:
        _reindex_segments(p, source, enabled_only=True)
    except DomainError as exc:
        indexing.fail(document_id, exc)
        raise
    return IndexingStatus.COMPLETED.value


def _completed_source(document_id: str) -> Source | None:
    loaded = sources.load_if_exists(document_id, purpose="change in the index")
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


def _reindex_segments(p: Pipeline, source: Source, *, enabled_only: bool) -> None:
    """Embed and upsert the document's completed segments, a batch per transaction."""
    after = -1
    while True:
        with db.session_scope(new=True) as session:
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
            nodes = indexing.nodes_of(session, source, batch)
        if not batch:
            return
        after = batch[-1].position
        _, vectors = indexing.embed_nodes(p, source, nodes)
        with db.session_scope(new=True) as session:
            indexing.write_index(p, session, source, batch, vectors)


def _drop_document_index(p: Pipeline, session: orm.Session, source: Source) -> None:
    collection = p.vectors.collection_name(str(source.dataset_id))
    p.vectors.delete_document(session, collection, str(source.document_id))
    p.keywords.delete_document(session, str(source.dataset_id), str(source.document_id))
