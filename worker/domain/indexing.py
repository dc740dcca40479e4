"""Indexing a document, as Dify's IndexingRunner, in short steps that survive a crash.

Status machine (``documents.indexing_status``): waiting -> parsing -> splitting -> indexing ->
completed | error, each step committed on the document with its timestamp. The text is read and
embedded with no transaction open; each step's writes commit in a short step of the job's unit of
work (``uow.step()``), never with the job's outcome:

1. ``parsing``: read the source (storage, Notion, web);
2. ``splitting``: clean and split; old segments, child chunks, vectors and keywords of the
   document are replaced by the new ones in one step (stable node ids: no duplicates);
3. ``indexing``: segments are embedded and loaded batch by batch; each batch's vectors and its
   segments' ``completed`` status commit together. The pause flag is checked before each batch;
4. ``completed``: tokens, latency, in a last step: a job indexing several documents does not
   lose one's completion when a later one fails.

Re-running resumes by status: ``indexing`` loads only the segments not yet completed; earlier
statuses start over from the source. A failure is recorded on the document, then raised so that
the job records it too: a failure the job will retry (``retrying``, supplied by the task) keeps
the document in progress with ``retrying: <reason>`` as its error, and the retry resumes it by
its rows' state; any other failure ends in ``error`` with the reason.
"""

from __future__ import annotations

import datetime
import logging
import time
import uuid
from collections.abc import Callable, Sequence

import sqlalchemy as sa
from sqlalchemy import orm

from worker.domain import chunking, pipeline, segments, sources
from worker.domain.errors import DomainError, PermanentError, TransientError
from worker.domain.models import Document, IndexingStatus
from worker.domain.pipeline import Pipeline, Source
from worker.domain.sql import queries as sql_queries
from worker.domain.uow import UnitOfWork

logger = logging.getLogger(__name__)

#: Whether a failure will be retried (the job runs again): such a document stays in progress.
Retrying = Callable[[BaseException], bool]

#: Statuses from which the whole pipeline starts over from the source.
RESTART_STATUSES = frozenset(
    {
        IndexingStatus.WAITING,
        IndexingStatus.PARSING,
        IndexingStatus.CLEANING,
        IndexingStatus.SPLITTING,
    }
)
#: Prefix of ``documents.error`` while a failure waits for its retry (the status is unchanged).
RETRY_NOTE = "retrying: "


class DocumentPaused(DomainError):
    """The document was paused; indexing stopped before the next batch."""


def never(exc: BaseException) -> bool:
    """No failure is retried: the service was called outside a job (a command, a test)."""
    return False


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def index_document(
    uow: UnitOfWork,
    p: Pipeline,
    document_id: str,
    *,
    restart: bool = False,
    retrying: Retrying = never,
) -> str | None:
    """Index one document from where it stands (or from its source with ``restart``).

    Returns the final status, or ``None`` when the document does not exist (logged).

    Parameters
    ----------
    uow:
        The job's unit of work; every write is a step of it (nothing waits for the job's end).
    restart:
        Start over from the source whatever the status (the source or the rule changed).
    retrying:
        Whether the job will run again after a failure: the document then stays in progress.

    Raises
    ------
    DomainError
        After recording it on the document (a pause is not an error: it returns ``paused``).
    """
    started = time.perf_counter()
    try:
        loaded = sources.load_if_exists(uow, document_id, purpose="index")
    except PermanentError as exc:
        fail(uow, document_id, exc)
        raise
    if loaded is None:
        return None
    source, status = loaded
    try:
        if restart or status in RESTART_STATUSES:
            _parse_and_split(uow, p, source)
        elif status is not IndexingStatus.INDEXING:
            return status.value
        tokens = _load_pending(uow, p, source)
        _complete(uow, source.document_id, tokens, time.perf_counter() - started)
    except DocumentPaused:
        logger.info(
            "document %s paused: indexing stopped",
            document_id,
            extra={"action": "indexing_paused", "document_id": document_id},
        )
        return IndexingStatus.PAUSED.value
    except Exception as exc:
        fail(uow, document_id, exc, retrying=retrying)
        raise
    return IndexingStatus.COMPLETED.value


def _parse_and_split(uow: UnitOfWork, p: Pipeline, source: Source) -> None:
    _set_status(uow, source.document_id, IndexingStatus.PARSING, processing_started_at=now())
    text = pipeline.read_text(p, source)
    _set_status(uow, source.document_id, IndexingStatus.SPLITTING, parsing_completed_at=now())
    planned = pipeline.plan_segments(source, text)
    with uow.step() as session:
        _check_not_paused(session, source.document_id)
        segments.clear_document_index(p, session, source)
        segments.insert_segments(session, source, planned)
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


def _load_pending(uow: UnitOfWork, p: Pipeline, source: Source) -> int:
    """Embed and load the segments not completed yet, a step per batch; return tokens."""
    tokens = 0
    while True:
        with uow.step() as session:
            _check_not_paused(session, source.document_id)
            batch = segments.pending_segments(session, source.document_id, p.batch_size)
            nodes = segments.nodes_of(session, source, batch)
        if not batch:
            return tokens
        spent, vectors = segments.embed_nodes(p, source, nodes)  # no transaction open
        with uow.step() as session:
            _check_not_paused(session, source.document_id)
            segments.write_index(p, session, source, batch, vectors)
            segments.mark_indexed(session, source, batch, spent)
        tokens += spent


def _complete(uow: UnitOfWork, document_id: uuid.UUID, tokens: int, latency: float) -> None:
    # A step, not the job's outcome: a job indexing several documents must not lose one's
    # completion when a later one fails, nor hold its row lock meanwhile. A re-run finds the
    # document completed and leaves it alone.
    with uow.step() as session:
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


def _set_status(
    uow: UnitOfWork, document_id: uuid.UUID, status: IndexingStatus, **stamps: object
) -> None:
    with uow.step() as session:
        _check_not_paused(session, document_id)
        session.execute(
            sa.update(Document)
            .where(Document.id == document_id)
            .values(indexing_status=status, error=None, **stamps)
        )


def fail(
    uow: UnitOfWork, document_id: str, exc: BaseException, *, retrying: Retrying = never
) -> None:
    """Record a failure on the document, in a step of its own (what the job had not committed
    yet is dropped first: the job fails, so it would roll back anyway).

    A failure that ``retrying`` says the job will retry leaves the status as it is and sets the
    error to ``retrying: <reason>``; any other sets ``error`` with the reason and ``stopped_at``.
    """
    message = reason(exc)
    retried = retrying(exc)
    uow.rollback()
    try:
        doc_id = sources.as_uuid(document_id, what="document id")
    except PermanentError:
        doc_id = None  # a malformed id names no document: the job's outcome carries the error
    if doc_id is not None:
        values: dict[str, object] = (
            {"error": RETRY_NOTE + message}  # the status stays: the retry resumes from it
            if retried
            else {"indexing_status": IndexingStatus.ERROR, "error": message, "stopped_at": now()}
        )
        with uow.step() as session:
            session.execute(sa.update(Document).where(Document.id == doc_id).values(**values))
    logger.warning(
        "indexing document %s failed%s: %s",
        document_id,
        ", to be retried" if retried else "",
        message,
        extra={
            "action": "indexing_retrying" if retried else "indexing_failed",
            "document_id": document_id,
        },
    )


def reason(exc: BaseException) -> str:
    """What ``documents.error`` says of a failure."""
    return str(exc) or type(exc).__name__


def clear_retry_note(session: orm.Session, document_id: uuid.UUID) -> None:
    """Clear the document's ``retrying:`` note (its retry succeeded), and no other error."""
    session.execute(
        sa.update(Document)
        .where(Document.id == document_id, Document.error.startswith(RETRY_NOTE, autoescape=True))
        .values(error=None)
    )


def index_documents(
    uow: UnitOfWork,
    p: Pipeline,
    document_ids: Sequence[str],
    *,
    restart: bool = False,
    retrying: Retrying = never,
) -> dict[str, str | None]:
    """Index several documents one after the other; each records its own outcome.

    Raises
    ------
    TransientError, PermanentError
        At the end, naming every document that failed (see :func:`each_document`).
    """
    return each_document(
        document_ids,
        lambda d: index_document(uow, p, d, restart=restart, retrying=retrying),
        retrying=retrying,
    )


def each_document(
    document_ids: Sequence[str], step: Callable[[str], str | None], *, retrying: Retrying = never
) -> dict[str, str | None]:
    """Run ``step`` for each document, recording each outcome; one summary error at the end.

    A failing ``step`` records its error on its document (``fail``) before raising. A document
    ``step`` finds in ``error`` (failed for good by an earlier run of the job) counts as failed.

    Raises
    ------
    TransientError
        Some document's failure will be retried (``retrying``): the job runs again, and finds
        the documents that completed already completed.
    PermanentError
        Otherwise, naming every document that failed.
    """
    outcome: dict[str, str | None] = {}
    failures: list[str] = []
    retried = 0
    for document_id in document_ids:
        try:
            outcome[document_id] = step(document_id)
        except DomainError as exc:
            outcome[document_id] = IndexingStatus.ERROR.value
            if retrying(exc):
                retried += 1
                failures.append(f"{document_id}: {exc} (to be retried)")
            else:
                failures.append(f"{document_id}: {exc}")
            continue
        if outcome[document_id] == IndexingStatus.ERROR.value:
            failures.append(f"{document_id}: in error (its error says why)")
    if not failures:
        return outcome
    message = f"{len(failures)} of {len(document_ids)} document(s) failed: " + "; ".join(failures)
    raise TransientError(message) if retried else PermanentError(message)


def stuck_documents(
    session: orm.Session, *, older_than: float, limit: int = 500
) -> list[tuple[str, str, str]]:
    """``(document_id, dataset_id, status)`` of documents in progress that no job will finish."""
    rows = session.execute(
        sa.text(sql_queries()["stuck_documents"]), {"older_than": older_than, "limit": limit}
    )
    return [(str(row.id), str(row.dataset_id), str(row.indexing_status)) for row in rows]
