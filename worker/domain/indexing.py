"""Indexing a document, as Dify's IndexingRunner, in short steps that survive a crash.

Status machine (``documents.indexing_status``): waiting -> parsing -> splitting -> indexing ->
completed | error, each step committed on the document with its timestamp. The text is read and
embedded outside any transaction; each step's writes commit in their own short transaction:

1. ``parsing``: read the source (storage, Notion, web);
2. ``splitting``: clean and split; old segments, child chunks, vectors and keywords of the
   document are replaced by the new ones in one transaction (stable node ids: no duplicates);
3. ``indexing``: segments are embedded and loaded batch by batch; each batch's vectors and its
   segments' ``completed`` status commit together. The pause flag is checked before each batch;
4. ``completed``: tokens, latency, in a last short transaction.

Re-running resumes by status: ``indexing`` loads only the segments not yet completed; earlier
statuses start over from the source. Every failure ends in ``error`` with the message on the
document, then is raised so that the job records it too.
"""

from __future__ import annotations

import datetime
import logging
import time
import uuid
from collections.abc import Callable, Sequence

import sqlalchemy as sa
from sqlalchemy import orm

from worker import db
from worker.domain import chunking, pipeline, sources
from worker.domain.errors import DomainError, PermanentError
from worker.domain.models import (
    ChildChunk,
    Document,
    DocumentSegment,
    IndexingStatus,
    IndexStructureType,
    IndexTechniqueType,
    SegmentStatus,
)
from worker.domain.pipeline import Pipeline, PlannedSegment, Source
from worker.domain.ports import VectorItem
from worker.domain.sql import queries as sql_queries

logger = logging.getLogger(__name__)

#: Statuses from which the whole pipeline starts over from the source.
RESTART_STATUSES = frozenset(
    {
        IndexingStatus.WAITING,
        IndexingStatus.PARSING,
        IndexingStatus.CLEANING,
        IndexingStatus.SPLITTING,
    }
)


class DocumentPaused(DomainError):
    """The document was paused; indexing stopped before the next batch."""


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def index_document(p: Pipeline, document_id: str, *, restart: bool = False) -> str | None:
    """Index one document from where it stands (or from its source with ``restart``).

    Returns the final status, or ``None`` when the document does not exist (logged).

    Raises
    ------
    DomainError
        After recording it on the document as ``error`` (a pause is not an error: it returns).
    """
    started = time.perf_counter()
    try:
        loaded = sources.load_if_exists(document_id, purpose="index")
    except PermanentError as exc:
        fail(document_id, exc)
        raise
    if loaded is None:
        return None
    source, status = loaded
    try:
        if restart or status in RESTART_STATUSES:
            _parse_and_split(p, source)
        elif status is not IndexingStatus.INDEXING:
            return status.value
        tokens = _load_pending(p, source)
        _complete(source.document_id, tokens, time.perf_counter() - started)
    except DocumentPaused:
        logger.info(
            "document %s paused: indexing stopped",
            document_id,
            extra={"action": "indexing_paused", "document_id": document_id},
        )
        return IndexingStatus.PAUSED.value
    except Exception as exc:
        fail(document_id, exc)
        raise
    return IndexingStatus.COMPLETED.value


def _parse_and_split(p: Pipeline, source: Source) -> None:
    _set_status(source.document_id, IndexingStatus.PARSING, processing_started_at=now())
    text = pipeline.read_text(p, source)
    _set_status(source.document_id, IndexingStatus.SPLITTING, parsing_completed_at=now())
    planned = pipeline.plan_segments(source, text)
    with db.session_scope(new=True) as session:
        _check_not_paused(session, source.document_id)
        clear_document_index(p, session, source)
        _insert_segments(session, source, planned)
        stamp = now()
        session.execute(
            sa.update(Document)
            .where(Document.id == source.document_id)
            .values(
                indexing_status=IndexingStatus.INDEXING,
                cleaning_completed_at=stamp,
                splitting_completed_at=stamp,
                word_count=sum(chunking.word_count(s.content) for s in planned),
                tokens=0,
                error=None,
            )
        )


def clear_document_index(p: Pipeline, session: orm.Session, source: Source) -> None:
    """Delete the document's segments, child chunks, vectors and keywords (one transaction)."""
    collection = p.vectors.collection_name(str(source.dataset_id))
    p.vectors.delete_document(session, collection, str(source.document_id))
    p.keywords.delete_document(session, str(source.dataset_id), str(source.document_id))
    session.execute(sa.delete(ChildChunk).where(ChildChunk.document_id == source.document_id))
    session.execute(
        sa.delete(DocumentSegment).where(DocumentSegment.document_id == source.document_id)
    )


def _insert_segments(
    session: orm.Session, source: Source, planned: Sequence[PlannedSegment]
) -> None:
    """Insert the segments and their child chunks in two multi-row statements."""
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


def _load_pending(p: Pipeline, source: Source) -> int:
    """Embed and load the segments not completed yet, a batch per transaction; return tokens."""
    tokens = 0
    while True:
        with db.session_scope(new=True) as session:
            _check_not_paused(session, source.document_id)
            batch = _pending_segments(session, source.document_id, p.batch_size)
            nodes = nodes_of(session, source, batch)
        if not batch:
            return tokens
        tokens += _store(p, source, batch, nodes)


def _pending_segments(
    session: orm.Session, document_id: uuid.UUID, limit: int
) -> list[DocumentSegment]:
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


def nodes_of(
    session: orm.Session, source: Source, batch: Sequence[DocumentSegment]
) -> list[tuple[str, str, str]]:
    """``(node_id, content, segment index_node_id)`` of what gets embedded for ``batch``:
    the segments themselves, or their child chunks for parent-child documents."""
    if source.doc_form is not IndexStructureType.PARENT_CHILD_INDEX:
        return [(str(s.index_node_id), s.content, str(s.index_node_id)) for s in batch]
    parents = {s.id: str(s.index_node_id) for s in batch}
    children = session.scalars(
        sa.select(ChildChunk)
        .where(ChildChunk.segment_id.in_(list(parents)))
        .order_by(ChildChunk.segment_id, ChildChunk.position)
    )
    return [(str(c.index_node_id), c.content, parents[c.segment_id]) for c in children]


def _store(
    p: Pipeline,
    source: Source,
    batch: Sequence[DocumentSegment],
    nodes: Sequence[tuple[str, str, str]],
) -> int:
    tokens, vectors = embed_nodes(p, source, nodes)
    with db.session_scope(new=True) as session:
        _check_not_paused(session, source.document_id)
        write_index(p, session, source, batch, vectors)
        stamp = now()
        session.execute(
            sa.update(DocumentSegment)
            .where(DocumentSegment.id.in_([s.id for s in batch]))
            .values(status=SegmentStatus.COMPLETED, enabled=True, completed_at=stamp, error=None)
        )
        session.execute(
            sa.update(ChildChunk)
            .where(ChildChunk.segment_id.in_([s.id for s in batch]))
            .values(completed_at=stamp)
        )
        session.execute(
            sa.update(Document)
            .where(Document.id == source.document_id)
            .values(tokens=sa.func.coalesce(Document.tokens, 0) + tokens)
        )
    return tokens


def embed_nodes(
    p: Pipeline, source: Source, nodes: Sequence[tuple[str, str, str]]
) -> tuple[int, list[VectorItem]]:
    """Embed ``(node_id, content, parent node id)`` nodes of a high-quality dataset (no
    transaction is open here); economy datasets get no vectors. Returns tokens and vectors."""
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
    """Upsert ``batch``'s vectors (high quality) or keywords (economy) in ``session``."""
    if source.technique is IndexTechniqueType.ECONOMY:
        p.keywords.upsert(
            session,
            str(source.dataset_id),
            [(str(s.index_node_id), str(source.document_id), s.content, None) for s in batch],
        )
    elif vectors:
        p.vectors.upsert(session, p.vectors.collection_name(str(source.dataset_id)), vectors)


def _complete(document_id: uuid.UUID, tokens: int, latency: float) -> None:
    # Its own short transaction, not the job's: a job indexing several documents must not
    # lose one's completion when a later one fails, nor hold its row lock meanwhile. A re-run
    # finds the document completed and leaves it alone.
    with db.session_scope(new=True) as session:
        session.execute(
            sa.update(Document)
            .where(Document.id == document_id)
            .values(
                indexing_status=IndexingStatus.COMPLETED,
                completed_at=now(),
                indexing_latency=latency,
                error=None,
                stopped_at=None,
            )
        )
    logger.info(
        "document %s indexed: %d tokens in %.2f s",
        document_id,
        tokens,
        latency,
        extra={"action": "indexing_completed", "document_id": str(document_id)},
    )


def _check_not_paused(session: orm.Session, document_id: uuid.UUID) -> None:
    paused = session.scalar(sa.select(Document.is_paused).where(Document.id == document_id))
    if paused:
        raise DocumentPaused(f"document {document_id} is paused")


def _set_status(document_id: uuid.UUID, status: IndexingStatus, **stamps: object) -> None:
    with db.session_scope(new=True) as session:
        _check_not_paused(session, document_id)
        session.execute(
            sa.update(Document)
            .where(Document.id == document_id)
            .values(indexing_status=status, error=None, **stamps)
        )


def fail(document_id: str, exc: BaseException) -> None:
    message = str(exc) or type(exc).__name__
    try:
        doc_id = sources.as_uuid(document_id, what="document id")
    except PermanentError:
        doc_id = None  # a malformed id names no document: the job's outcome carries the error
    if doc_id is not None:
        with db.session_scope(new=True) as session:
            session.execute(
                sa.update(Document)
                .where(Document.id == doc_id)
                .values(indexing_status=IndexingStatus.ERROR, error=message, stopped_at=now())
            )
    logger.warning(
        "indexing document %s failed: %s",
        document_id,
        message,
        extra={"action": "indexing_failed", "document_id": document_id},
    )


def index_documents(
    p: Pipeline, document_ids: Sequence[str], *, restart: bool = False
) -> dict[str, str | None]:
    """Index several documents one after the other; each records its own outcome.

    Raises
    ------
    PermanentError
        At the end, naming every document that failed (each is ``error`` with its message).
    """
    return each_document(
        document_ids, lambda document_id: index_document(p, document_id, restart=restart)
    )


def each_document(
    document_ids: Sequence[str], step: Callable[[str], str | None]
) -> dict[str, str | None]:
    """Run ``step`` for each document, recording each outcome; one summary error at the end.

    A failing ``step`` records its error on its document (``fail``) before raising.

    Raises
    ------
    PermanentError
        Naming every document whose step raised a ``DomainError``.
    """
    outcome: dict[str, str | None] = {}
    failures: list[str] = []
    for document_id in document_ids:
        try:
            outcome[document_id] = step(document_id)
        except DomainError as exc:
            outcome[document_id] = IndexingStatus.ERROR.value
            failures.append(f"{document_id}: {exc}")
    if failures:
        raise PermanentError(
            f"{len(failures)} of {len(document_ids)} document(s) failed: " + "; ".join(failures)
        )
    return outcome


def sync_notion_document(p: Pipeline, document_id: str) -> str | None:
    """Re-index a Notion document if its page changed since the last import; else a no-op.

    The page's new ``last_edited_time`` is stored only once the re-import completed, so a sync
    that crashed or failed is done again by the next one instead of being taken as done.
    """
    loaded = sources.load_if_exists(document_id, purpose="sync")
    if loaded is None:
        return None
    source, status = loaded
    if status is IndexingStatus.PARSING:
        return status.value  # another run is importing it right now
    page_id, page_type = pipeline.notion_page(source)
    if p.notion is None:
        exc = PermanentError("NOTION_INTEGRATION_TOKEN is not set: cannot sync from Notion")
        fail(document_id, exc)
        raise exc
    client = p.notion()
    try:
        edited = client.last_edited_time(page_id, page_type)
    finally:
        client.close()
    unchanged = edited == source.data_source_info.get("last_edited_time")
    if unchanged and status is IndexingStatus.COMPLETED:
        logger.info(
            "notion page of document %s unchanged since %s: nothing to sync",
            document_id,
            edited,
            extra={"action": "notion_sync_unchanged", "document_id": document_id},
        )
        return status.value
    outcome = index_document(p, document_id, restart=True)
    if outcome == IndexingStatus.COMPLETED.value:
        with db.session_scope(new=True) as session:
            session.execute(
                sa.update(Document)
                .where(Document.id == source.document_id)
                .values(data_source_info={**source.data_source_info, "last_edited_time": edited})
            )
    return outcome


def stuck_documents(
    session: orm.Session, *, older_than: float, limit: int = 500
) -> list[tuple[str, str, str]]:
    """``(document_id, dataset_id, status)`` of documents in progress that no job will finish."""
    rows = session.execute(
        sa.text(sql_queries()["stuck_documents"]), {"older_than": older_than, "limit": limit}
    )
    return [(str(row.id), str(row.dataset_id), str(row.indexing_status)) for row in rows]
