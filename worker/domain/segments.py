"""A document's index rows: its segments and child chunks, and their vectors or keywords.

Every function here works in the session it is given (a step of the job's unit of work) and
never commits; :func:`embed_nodes` is the one that needs no session at all, so that embedding
happens with no transaction open.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy import orm

from worker.domain import chunking
from worker.domain.models import (
    ChildChunk,
    Document,
    DocumentSegment,
    IndexStructureType,
    IndexTechniqueType,
    SegmentStatus,
)
from worker.domain.pipeline import Pipeline, PlannedSegment, Source
from worker.domain.ports import VectorItem

#: ``(node_id, content, parent segment's node id)`` of one text to embed.
Node = tuple[str, str, str]


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def clear_document_index(p: Pipeline, session: orm.Session, source: Source) -> None:
    """Delete the document's segments, child chunks, vectors and keywords."""
    collection = p.vectors.collection_name(str(source.dataset_id))
    p.vectors.delete_document(session, collection, str(source.document_id))
    p.keywords.delete_document(session, str(source.dataset_id), str(source.document_id))
    session.execute(sa.delete(ChildChunk).where(ChildChunk.document_id == source.document_id))
    session.execute(
        sa.delete(DocumentSegment).where(DocumentSegment.document_id == source.document_id)
    )


def insert_segments(
    session: orm.Session, source: Source, planned: Sequence[PlannedSegment]
) -> None:
    """Insert the segments (``indexing``) and their child chunks in two multi-row statements."""
    stamp = now()
    common = {
        "tenant_id": source.tenant_id,
        "dataset_id": source.dataset_id,
        "document_id": source.document_id,
        "created_by": source.created_by,
        "indexing_at": stamp,
    }
    segments: list[dict[str, object]] = []
    children: list[dict[str, object]] = []
    for segment in planned:
        segment_id = uuid.uuid4()
        segments.append(
            {
                **common,
                "id": segment_id,
                "position": segment.position,
                "content": segment.content,
                "word_count": chunking.word_count(segment.content),
                "tokens": segment.tokens,
                "index_node_id": segment.node_id,
                "index_node_hash": segment.node_hash,
                "status": SegmentStatus.INDEXING,
            }
        )
        children.extend(
            {
                **common,
                "segment_id": segment_id,
                "position": child.position,
                "content": child.content,
                "word_count": chunking.word_count(child.content),
                "index_node_id": child.node_id,
                "index_node_hash": child.node_hash,
            }
            for child in segment.children
        )
    if segments:
        session.execute(sa.insert(DocumentSegment), segments)
    if children:
        session.execute(sa.insert(ChildChunk), children)


def pending_segments(
    session: orm.Session, document_id: uuid.UUID, limit: int
) -> list[DocumentSegment]:
    """The first ``limit`` segments of the document not completed yet, by position."""
    return list(
        session.scalars(
            sa.select(DocumentSegment)
            .where(
                DocumentSegment.document_id == document_id,
                DocumentSegment.status != SegmentStatus.COMPLETED,
            )
            .order_by(DocumentSegment.position)
            .limit(limit)
        )
    )


def nodes_of(session: orm.Session, source: Source, batch: Sequence[DocumentSegment]) -> list[Node]:
    """The nodes embedded for ``batch``: the segments themselves, or their child chunks for
    parent-child documents."""
    if source.doc_form is not IndexStructureType.PARENT_CHILD_INDEX:
        return [(str(s.index_node_id), s.content, str(s.index_node_id)) for s in batch]
    parents = {s.id: str(s.index_node_id) for s in batch}
    children = session.scalars(
        sa.select(ChildChunk)
        .where(ChildChunk.segment_id.in_(list(parents)))
        .order_by(ChildChunk.segment_id, ChildChunk.position)
    )
    return [(str(c.index_node_id), c.content, parents[c.segment_id]) for c in children]


def embed_nodes(p: Pipeline, source: Source, nodes: Sequence[Node]) -> tuple[int, list[VectorItem]]:
    """Embed the nodes of a high-quality dataset (no transaction is open here); economy datasets
    get no vectors. Returns tokens and vectors.

    Raises
    ------
    DomainError
        What the embedder raises (``TransientError`` for HTTP 429/5xx, timeouts, refused
        connections; ``PermanentError`` for a rejected request).
    """
    if source.technique is not IndexTechniqueType.HIGH_QUALITY or not nodes:
        return 0, []
    embedded = p.embedder.embed([content for _, content, _ in nodes])
    return embedded.tokens, [
        VectorItem(
            node_id=node_id,
            content=content,
            embedding=vector,
            document_id=str(source.document_id),
            metadata={
                "doc_id": node_id,
                "document_id": str(source.document_id),
                "dataset_id": str(source.dataset_id),
                "parent_id": parent,
            },
        )
        for (node_id, content, parent), vector in zip(nodes, embedded.vectors, strict=True)
    ]


def write_index(
    p: Pipeline,
    session: orm.Session,
    source: Source,
    batch: Sequence[DocumentSegment],
    vectors: Sequence[VectorItem],
) -> None:
    """Upsert ``batch``'s full-text entries (with extracted keywords for economy datasets)
    and, for high-quality datasets, its vectors: full-text and hybrid searches of a
    high-quality dataset read the same ``keyword_index`` as an economy dataset's keyword search.
    """
    economy = source.technique is IndexTechniqueType.ECONOMY
    p.keywords.upsert(
        session,
        str(source.dataset_id),
        [
            (str(s.index_node_id), str(source.document_id), s.content, None if economy else ())
            for s in batch
        ],
    )
    if not economy and vectors:
        p.vectors.upsert(session, p.vectors.collection_name(str(source.dataset_id)), vectors)


def mark_indexed(
    session: orm.Session, source: Source, batch: Sequence[DocumentSegment], tokens: int
) -> None:
    """Mark ``batch``'s segments and child chunks completed and add ``tokens`` to the document
    (clearing a ``retrying:`` note: the retry is making progress)."""
    stamp = now()
    ids = [s.id for s in batch]
    session.execute(
        sa.update(DocumentSegment)
        .where(DocumentSegment.id.in_(ids))
        .values(status=SegmentStatus.COMPLETED, enabled=True, completed_at=stamp, error=None)
    )
    session.execute(
        sa.update(ChildChunk).where(ChildChunk.segment_id.in_(ids)).values(completed_at=stamp)
    )
    session.execute(
        sa.update(Document)
        .where(Document.id == source.document_id)
        .values(tokens=sa.func.coalesce(Document.tokens, 0) + tokens, error=None)
    )
