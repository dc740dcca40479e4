"""Enabling and disabling segments: Dify's ``enable_segment_to_index_task``,
``disable_segment_from_index_task`` and the batch toggles the console calls.

The caller has already flipped ``enabled`` and committed; the job makes the index follow. What
counts is the segment's ``enabled`` value in the job's final transaction, not the request: a
segment re-enabled before its disable job runs keeps its vector, one disabled again before its
enable job ends gets none. The document row is held ``FOR SHARE`` there, so it cannot be
disabled, archived or deleted under the write. Embedding happens with no transaction open; the
final writes commit with the job's outcome, so a re-run after a crash upserts the same node ids.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy import orm

from worker.domain import segments, sources
from worker.domain.indexing import Retrying, never, reason
from worker.domain.models import DocumentSegment, SegmentStatus
from worker.domain.pipeline import Pipeline
from worker.domain.segment_ops import index
from worker.domain.uow import UnitOfWork

logger = logging.getLogger(__name__)

ENABLED = "enabled"
DISABLED = "disabled"
SKIPPED = "skipped: "


def _ids(values: Sequence[str]) -> list[uuid.UUID]:
    return [sources.as_uuid(v, what="segment id") for v in values]


def _locked_segments(
    session: orm.Session, ids: Sequence[uuid.UUID], document_id: uuid.UUID
) -> list[DocumentSegment]:
    return list(
        session.scalars(
            sa.select(DocumentSegment)
            .where(DocumentSegment.id.in_(ids), DocumentSegment.document_id == document_id)
            .order_by(DocumentSegment.position)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    )


def _document_of(uow: UnitOfWork, ids: Sequence[uuid.UUID]) -> uuid.UUID | None:
    with uow.step() as session:
        return session.scalar(
            sa.select(DocumentSegment.document_id).where(DocumentSegment.id.in_(ids)).limit(1)
        )


def _skipped(ids: Sequence[uuid.UUID], why: str, action: str) -> dict[str, str]:
    logger.info(
        "segments %s left alone: %s",
        ", ".join(str(i) for i in ids),
        why,
        extra={"action": action},
    )
    return {str(i): SKIPPED + why for i in ids}


def enable_segments(
    uow: UnitOfWork,
    p: Pipeline,
    segment_ids: Sequence[str],
    document_id: str | None = None,
    *,
    retrying: Retrying = never,
) -> dict[str, str]:
    """Index the segments that are enabled and completed when the job ends.

    Returns each segment's outcome (``enabled`` or ``skipped: <why>``).

    Raises
    ------
    DomainError
        Embedding failed; unless retried, the segments get Dify's error state (disabled,
        ``status='error'``, the message in ``error``).
    """
    ids = _ids(segment_ids)
    document = (
        sources.as_uuid(document_id, what="document id") if document_id else _document_of(uow, ids)
    )
    if document is None:
        return _skipped(ids, "segment not found", "segment_enable_skipped")
    loaded = sources.load_if_exists(uow, document, purpose="enable segments of")
    if loaded is None:
        return _skipped(ids, "document not found", "segment_enable_skipped")
    source, _ = loaded
    try:
        with uow.step() as session:
            why = index.invalid_reason(session, document, lock=False)
            wanted = [s for s in _locked_segments(session, ids, document) if _indexable(s)]
            nodes = segments.nodes_of(session, source, wanted)
        if why is not None:
            return _skipped(ids, why, "segment_enable_skipped")
        _, vectors = segments.embed_nodes(p, source, nodes)  # no transaction open
        session = uow.session  # the final writes commit with the job's outcome
        why = index.invalid_reason(session, document, lock=True)
        if why is not None:
            return _skipped(ids, why, "segment_enable_skipped")
        kept = [s for s in _locked_segments(session, ids, document) if _indexable(s)]
        parents = {str(s.index_node_id) for s in kept}
        vectors = [v for v in vectors if v.metadata.get("parent_id") in parents]
        segments.write_index(p, session, source, kept, vectors)
    except Exception as exc:
        if not retrying(exc):
            _mark_error(uow, ids, exc)
        raise
    done = {str(s.id) for s in kept}
    return {
        str(i): ENABLED if str(i) in done else SKIPPED + "disabled, not completed or not found"
        for i in ids
    }


def _indexable(segment: DocumentSegment) -> bool:
    return segment.enabled and segment.status is SegmentStatus.COMPLETED


def _mark_error(uow: UnitOfWork, ids: Sequence[uuid.UUID], exc: BaseException) -> None:
    """Dify's failure state of an enable: the segments disabled, in ``error``, with why."""
    uow.rollback()
    with uow.step() as session:
        session.execute(
            sa.update(DocumentSegment)
            .where(DocumentSegment.id.in_(ids))
            .values(
                enabled=False,
                disabled_at=segments.now(),
                status=SegmentStatus.ERROR,
                error=reason(exc),
            )
        )
    logger.warning(
        "enabling segments failed: %s",
        reason(exc),
        extra={"action": "segment_enable_failed", "segment_ids": [str(i) for i in ids]},
    )


def disable_segments(
    uow: UnitOfWork,
    p: Pipeline,
    segment_ids: Sequence[str],
    document_id: str | None = None,
    *,
    retrying: Retrying = never,
) -> dict[str, str]:
    """Drop the vectors and keyword rows of the segments still disabled when the job runs
    (child chunk rows stay); segments re-enabled meanwhile keep theirs.

    Returns each segment's outcome (``disabled`` or ``skipped: <why>``).

    Raises
    ------
    DomainError
        The database failed; unless retried, the segments are enabled again (Dify reverts the
        user's toggle).
    """
    ids = _ids(segment_ids)
    document = (
        sources.as_uuid(document_id, what="document id") if document_id else _document_of(uow, ids)
    )
    if document is None:
        return _skipped(ids, "segment not found", "segment_disable_skipped")
    try:
        session = uow.session  # one transaction: it commits with the job's outcome
        why = index.invalid_reason(session, document, lock=True)
        if why is not None:
            return _skipped(ids, why, "segment_disable_skipped")
        gone = [s for s in _locked_segments(session, ids, document) if not s.enabled]
        if gone:
            index.drop_nodes(
                p,
                session,
                str(gone[0].dataset_id),
                str(document),
                [str(s.index_node_id) for s in gone if s.index_node_id],
            )
    except Exception as exc:
        if not retrying(exc):
            _reenable(uow, ids, exc)
        raise
    done = {str(s.id) for s in gone}
    return {str(i): DISABLED if str(i) in done else SKIPPED + "enabled or not found" for i in ids}


def _reenable(uow: UnitOfWork, ids: Sequence[uuid.UUID], exc: BaseException) -> None:
    uow.rollback()
    with uow.step() as session:
        session.execute(
            sa.update(DocumentSegment)
            .where(DocumentSegment.id.in_(ids), DocumentSegment.enabled.is_(False))
            .values(enabled=True, disabled_at=None, disabled_by=None)
        )
    logger.warning(
        "disabling segments failed, enabled again: %s",
        reason(exc),
        extra={"action": "segment_disable_failed", "segment_ids": [str(i) for i in ids]},
    )
