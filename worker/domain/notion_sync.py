"""Dify's Notion sync: re-import a Notion document when its page changed since the last import."""

from __future__ import annotations

import logging
import uuid

import sqlalchemy as sa

from worker.domain import indexing, pipeline, sources
from worker.domain.errors import PermanentError
from worker.domain.models import Document, IndexingStatus
from worker.domain.pipeline import Pipeline
from worker.domain.uow import UnitOfWork

logger = logging.getLogger(__name__)


def sync_notion_document(
    uow: UnitOfWork, p: Pipeline, document_id: str, *, retrying: indexing.Retrying = indexing.never
) -> str | None:
    """Re-index a Notion document if its page changed since the last import; else a no-op.

    The page's new ``last_edited_time`` is written through ``uow.session``: it commits with the
    job's success, once the re-import completed, so a sync that crashed or failed is done again
    by the next one (or by the job's retry) instead of being taken as done.

    Raises
    ------
    DomainError
        Notion unreachable or refusing (nothing recorded: the document is left as it was), or
        the re-import failed (recorded on the document by ``indexing.index_document``).
    """
    loaded = sources.load_if_exists(uow, document_id, purpose="sync")
    if loaded is None:
        return None
    source, status = loaded
    if status is IndexingStatus.PARSING and not _waits_for_retry(uow, source.document_id):
        return status.value  # another run is importing it right now
    page_id, page_type = pipeline.notion_page(source)
    if p.notion is None:
        exc = PermanentError("NOTION_INTEGRATION_TOKEN is not set: cannot sync from Notion")
        indexing.fail(uow, document_id, exc)
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
    outcome = indexing.index_document(uow, p, document_id, restart=True, retrying=retrying)
    if outcome == IndexingStatus.COMPLETED.value:
        uow.session.execute(
            sa.update(Document)
            .where(Document.id == source.document_id)
            .values(data_source_info={**source.data_source_info, "last_edited_time": edited})
        )
    return outcome


def _waits_for_retry(uow: UnitOfWork, document_id: uuid.UUID) -> bool:
    """Whether the document's last run failed and waits for its retry (a running import
    clears the note as it starts)."""
    with uow.step() as session:
        error = session.scalar(sa.select(Document.error).where(Document.id == document_id))
    return error is not None and error.startswith(indexing.RETRY_NOTE)
