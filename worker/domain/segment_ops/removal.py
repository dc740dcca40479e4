"""Dropping the index entries of deleted segments: Dify's ``delete_segment_from_index_task``.

The caller deletes the segment rows (their child chunks cascade) and defers the job in one
transaction; if one of the segments still exists (a defer made before its deletion committed),
the job deletes nothing and retries. Otherwise it deletes whatever the document's state: every
vector of the dataset's collection whose node id is one of the segments' or of their child
chunks', or (within the document) whose ``parent_id`` is one of the segments': Dify 1.7.0
looked the child chunks up by rows already deleted and left their vectors behind. Keyword rows
go with them. Deleting nothing is success, so a re-run is harmless.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence

import sqlalchemy as sa

from worker.domain import sources
from worker.domain.errors import TransientError
from worker.domain.models import DocumentSegment
from worker.domain.pipeline import Pipeline
from worker.domain.segment_ops import index
from worker.domain.uow import UnitOfWork

logger = logging.getLogger(__name__)


class SegmentsStillExist(TransientError):
    """Segments whose index entries the job should delete still exist: their deletion has not
    committed (a defer made before it, outside its transaction)."""


def delete_segments_from_index(
    uow: UnitOfWork,
    p: Pipeline,
    index_node_ids: Sequence[str],
    dataset_id: str,
    document_id: str,
    child_node_ids: Sequence[str] | None = None,
) -> str:
    """Delete the vectors and keyword rows of the given nodes, in the job's final transaction.

    Returns ``deleted <n> vector(s)``.

    Raises
    ------
    SegmentsStillExist
        A segment with one of the node ids still exists: nothing is deleted (retried, then
        failed: the index of a live segment is never dropped).
    PermanentError
        ``dataset_id`` or ``document_id`` is not a uuid.
    """
    dataset = str(sources.as_uuid(dataset_id, what="dataset id"))
    document = str(sources.as_uuid(document_id, what="document id"))
    live = uow.session.scalars(
        sa.select(DocumentSegment.index_node_id)
        .where(
            DocumentSegment.dataset_id == uuid.UUID(dataset),
            DocumentSegment.index_node_id.in_([str(n) for n in index_node_ids]),
        )
        .with_for_update(read=True)
    ).all()
    if live:
        raise SegmentsStillExist(f"segment node(s) {', '.join(map(str, live))} still exist")
    deleted = index.drop_nodes(
        p, uow.session, dataset, document, list(index_node_ids), list(child_node_ids or ())
    )
    logger.info(
        "deleted %d vector(s) of %d segment(s) of document %s",
        deleted,
        len(index_node_ids),
        document,
        extra={"action": "segments_unindexed", "document_id": document},
    )
    return f"deleted {deleted} vector(s)"
