"""What the segment operations share: the "document valid" rule and dropping index entries.

A document's index entries are its vectors (paragraph and QA: one per segment, node id the
segment's ``index_node_id``; parent-child: one per child chunk, whose metadata ``parent_id`` is
the parent segment's node id) and its ``keyword_index`` rows (one per segment node id).
"""

from __future__ import annotations

import logging
import typing
import uuid
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from worker.domain.models import (
    Dataset,
    Document,
    EmbeddingVector,
    IndexingStatus,
    KeywordEntry,
)
from worker.domain.pipeline import Pipeline

logger = logging.getLogger(__name__)


def invalid_reason(session: orm.Session, document_id: uuid.UUID, *, lock: bool) -> str | None:
    """Why the document's index must be left alone (Dify's "document valid" rule), or ``None``.

    Parameters
    ----------
    lock:
        Take ``FOR SHARE`` on the document row, so that it cannot be disabled, archived or
        deleted before the caller's transaction ends.
    """
    query = sa.select(Document).where(Document.id == document_id)
    if lock:
        query = query.with_for_update(read=True)
    document = session.execute(query.execution_options(populate_existing=True)).scalar()
    if document is None:
        return "document not found"
    if session.get(Dataset, document.dataset_id) is None:
        return "dataset not found"
    if not document.enabled:
        return "document is disabled"
    if document.archived:
        return "document is archived"
    if document.indexing_status is not IndexingStatus.COMPLETED:
        return f"document is {document.indexing_status.value}, not completed"
    return None


def drop_nodes(
    p: Pipeline,
    session: orm.Session,
    dataset_id: str,
    document_id: str | None,
    node_ids: Sequence[str],
    child_node_ids: Sequence[str] = (),
) -> int:
    """Delete the vectors and keyword rows of segment nodes ``node_ids``: their own vectors,
    the vectors whose ``parent_id`` is one of them (child chunks, within ``document_id`` when
    given) and ``child_node_ids``. Returns how many vectors were deleted."""
    collection = p.vectors.collection_name(dataset_id)
    nodes = [str(n) for n in node_ids]
    by_id = EmbeddingVector.node_id.in_([*nodes, *(str(c) for c in child_node_ids)])
    by_parent = EmbeddingVector.metadata_["parent_id"].astext.in_(nodes)
    if document_id is not None:
        by_parent = sa.and_(by_parent, EmbeddingVector.document_id == uuid.UUID(document_id))
    result = session.execute(
        sa.delete(EmbeddingVector).where(
            EmbeddingVector.collection == collection, sa.or_(by_id, by_parent)
        )
    )
    if nodes:
        session.execute(
            sa.delete(KeywordEntry).where(
                KeywordEntry.dataset_id == uuid.UUID(dataset_id), KeywordEntry.node_id.in_(nodes)
            )
        )
    return typing.cast("sa.CursorResult[Any]", result).rowcount
