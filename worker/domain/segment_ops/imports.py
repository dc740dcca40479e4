"""Dify's CSV import of segments (``batch_create_segment_to_index_task``): never twice.

Rows are checked before anything is written; the first bad one fails the job, naming it.
Segment and node ids derive from (job id, row), and the segments are inserted in one short
step, with their positions allocated there under the document row's lock, ``indexing`` (so
retrieval cannot see them). Then each batch is embedded with no transaction open, and its
vectors or keyword rows are written in the same step that marks its segments ``completed``.
The last writes (the document's word count, the job status ``completed``) commit with the
job's outcome. A crash anywhere resumes from what committed; a second run of the same job
inserts nothing and finds nothing left to index.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy import orm
from sqlalchemy.dialects.postgresql import insert

from worker.domain import chunking, job_status, segments, sources
from worker.domain.errors import PermanentError
from worker.domain.job_status import Retrying
from worker.domain.models import (
    ChildChunk,
    Document,
    DocumentSegment,
    IndexStructureType,
    JobKind,
    SegmentStatus,
)
from worker.domain.pipeline import Pipeline, Source
from worker.domain.segment_ops import index
from worker.domain.segment_ops.rows import IMPORT_NAMESPACE, ImportRow, read_rows, validate
from worker.domain.uow import UnitOfWork

logger = logging.getLogger(__name__)


def _never(exc: BaseException) -> bool:
    return False


def batch_create(
    uow: UnitOfWork,
    p: Pipeline,
    *,
    job_id: str,
    content: object,
    dataset_id: str,
    document_id: str,
    tenant_id: str,
    user_id: str,
    retrying: Retrying = _never,
) -> str:
    """Import the rows as segments of the document and index them.

    Returns ``imported <n> segment(s)``. The job status (kind ``segment_batch_import``)
    commits with the last writes, or records the error.

    Raises
    ------
    InvalidImportRow
        Before anything is written.
    PermanentError
        The document is missing or not available (disabled, archived, not completed), or it
        belongs to another dataset.
    TransientError
        The embedder failed in a way that may pass.
    """
    with job_status.tracking(
        uow, JobKind.SEGMENT_BATCH_IMPORT, job_id,
        tenant_id=tenant_id, target_id=document_id, retrying=retrying,
    ):  # fmt: skip
        document = sources.as_uuid(document_id, what="document id")
        user = sources.as_uuid(user_id, what="user id")
        loaded = sources.load_if_exists(uow, document, purpose="import segments into")
        if loaded is None or str(loaded[0].dataset_id) != str(
            sources.as_uuid(dataset_id, what="dataset id")
        ):
            raise PermanentError(f"document {document_id} of dataset {dataset_id} not found")
        source = loaded[0]
        with uow.step() as session:
            rows = validate(job_id, read_rows(session, p.storage, content), source.doc_form)
            why = index.invalid_reason(session, document, lock=True)
            if why is not None:
                raise PermanentError(f"cannot import segments: {why}")
            _insert(session, source, rows, user)
        _index_pending(uow, p, source, [r.segment_id for r in rows])
        _update_word_count(uow.session, document)
    logger.info(
        "imported %d segment(s) into document %s",
        len(rows),
        document_id,
        extra={"action": "segments_imported", "document_id": document_id, "dify_job_id": job_id},
    )
    return f"imported {len(rows)} segment(s)"


def _insert(
    session: orm.Session, source: Source, rows: Sequence[ImportRow], user: uuid.UUID
) -> None:
    """Insert the rows' segments (and child chunks) unless this job inserted them already;
    positions follow the document's last one (its row is locked by the caller)."""
    ids = [r.segment_id for r in rows]
    if session.scalar(sa.select(sa.func.count()).where(DocumentSegment.id.in_(ids))):
        return  # a re-run: positions were allocated once, by the first
    last = session.scalar(
        sa.select(sa.func.coalesce(sa.func.max(DocumentSegment.position), 0)).where(
            DocumentSegment.document_id == source.document_id
        )
    )
    stamp = segments.now()
    common = {
        "tenant_id": source.tenant_id,
        "dataset_id": source.dataset_id,
        "document_id": source.document_id,
        "created_by": user,
        "indexing_at": stamp,
    }
    session.execute(
        insert(DocumentSegment).on_conflict_do_nothing(),
        [
            {
                **common,
                "id": row.segment_id,
                "position": int(last or 0) + 1 + row.index,
                "content": row.content,
                "answer": row.answer,
                "word_count": row.word_count,
                "tokens": chunking.count_tokens(row.content + (row.answer or "")),
                "index_node_id": row.node_id,
                "index_node_hash": chunking.content_hash(row.content),
                "status": SegmentStatus.INDEXING,
                "enabled": True,
            }
            for row in rows
        ],
    )
    children = [c for row in rows for c in _children(source, row, common)]
    if children:
        session.execute(insert(ChildChunk).on_conflict_do_nothing(), children)


def _children(source: Source, row: ImportRow, common: dict[str, object]) -> list[dict[str, object]]:
    """A parent-child document's child chunks of ``row``, split by the document's rule."""
    if source.doc_form is not IndexStructureType.PARENT_CHILD_INDEX:
        return []
    parts = [c for parent in chunking.split_parent_child(row.content, source.rule)
             for c in parent.children] or [row.content]  # fmt: skip
    hashes = [chunking.content_hash(part) for part in parts]
    return [
        {
            **common,
            "id": uuid.uuid5(IMPORT_NAMESPACE, f"{row.segment_id}:child:{position}"),
            "segment_id": row.segment_id,
            "position": position,
            "content": part,
            "word_count": chunking.word_count(part),
            "index_node_id": str(
                uuid.uuid5(IMPORT_NAMESPACE, f"{row.node_id}:{position}:{node_hash}")
            ),
            "index_node_hash": node_hash,
        }
        for position, (part, node_hash) in enumerate(zip(parts, hashes, strict=True), start=1)
    ]


def _index_pending(uow: UnitOfWork, p: Pipeline, source: Source, ids: Sequence[uuid.UUID]) -> None:
    """Embed and index the imported segments not completed yet, a step per batch."""
    while True:
        with uow.step() as session:
            batch = _pending(session, ids, p.batch_size, lock=False)
            nodes = segments.nodes_of(session, source, batch)
        if not batch:
            return
        tokens, vectors = segments.embed_nodes(p, source, nodes)  # no transaction open
        with uow.step() as session:
            # rows the user deleted meanwhile get no index entry
            alive = _pending(session, [s.id for s in batch], len(batch), lock=True)
            parents = {str(s.index_node_id) for s in alive}
            kept = [v for v in vectors if v.metadata.get("parent_id") in parents]
            segments.write_index(p, session, source, alive, kept)
            segments.mark_indexed(session, source, alive, tokens)
        if len(alive) < len(batch):
            logger.info(
                "%d imported segment(s) were deleted before being indexed",
                len(batch) - len(alive),
                extra={"action": "imported_segments_gone", "document_id": str(source.document_id)},
            )


def _pending(
    session: orm.Session, ids: Sequence[uuid.UUID], limit: int, *, lock: bool
) -> list[DocumentSegment]:
    query = (
        sa.select(DocumentSegment)
        .where(DocumentSegment.id.in_(ids), DocumentSegment.status != SegmentStatus.COMPLETED)
        .order_by(DocumentSegment.position)
        .limit(limit)
        .execution_options(populate_existing=True)
    )
    if lock:
        query = query.with_for_update()
    return list(session.scalars(query))


def _update_word_count(session: orm.Session, document: uuid.UUID) -> None:
    """The document's word count, as the sum of its segments' (the same after a re-run)."""
    total = (
        sa.select(sa.func.coalesce(sa.func.sum(DocumentSegment.word_count), 0))
        .where(DocumentSegment.document_id == document)
        .scalar_subquery()
    )
    session.execute(sa.update(Document).where(Document.id == document).values(word_count=total))
