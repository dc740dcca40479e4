"""Reading what the pipeline needs of a document, in one short step of the job's unit of work."""

from __future__ import annotations

import logging
import uuid

from sqlalchemy import orm

from worker.domain import chunking
from worker.domain.errors import PermanentError
from worker.domain.models import (
    Dataset,
    DatasetProcessRule,
    DataSourceType,
    Document,
    IndexingStatus,
    IndexStructureType,
    IndexTechniqueType,
    ProcessRuleMode,
    UploadFile,
)
from worker.domain.pipeline import Source
from worker.domain.uow import UnitOfWork

logger = logging.getLogger(__name__)


class DocumentMissing(LookupError):
    """The document row does not exist (deleted, or never committed)."""


def as_uuid(value: str | uuid.UUID, *, what: str) -> uuid.UUID:
    """``value`` as a UUID; a malformed id is a permanent error naming ``what``."""
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise PermanentError(f"{what} {value!r} is not a UUID") from None


def load_if_exists(
    uow: UnitOfWork, document_id: str | uuid.UUID, *, purpose: str
) -> tuple[Source, IndexingStatus] | None:
    """:func:`load`, or ``None`` (logged: nothing to ``purpose``) for a missing document."""
    try:
        return load(uow, document_id)
    except DocumentMissing:
        logger.info(
            "document %s not found: nothing to %s",
            document_id,
            purpose,
            extra={"action": "document_missing", "document_id": str(document_id)},
        )
        return None


def load(uow: UnitOfWork, document_id: str | uuid.UUID) -> tuple[Source, IndexingStatus]:
    """The document's :class:`Source` and its current status, read in one step.

    The rows are read again from the database even if an earlier step of the same unit of work
    loaded them (the session keeps its objects across steps).

    Raises
    ------
    DocumentMissing
        No such document.
    PermanentError
        Its dataset, process rule or uploaded file is missing or unusable.
    """
    doc_id = as_uuid(document_id, what="document id")
    with uow.step() as session:
        document = session.get(Document, doc_id, populate_existing=True)
        if document is None:
            raise DocumentMissing(str(doc_id))
        dataset = session.get(Dataset, document.dataset_id, populate_existing=True)
        if dataset is None:
            raise PermanentError(f"dataset {document.dataset_id} of document {doc_id} not found")
        rule = _rule(session, document)
        upload = _upload(session, document)
        return (
            Source(
                document_id=document.id,
                dataset_id=dataset.id,
                tenant_id=document.tenant_id,
                created_by=document.created_by,
                name=document.name,
                data_source_type=document.data_source_type,
                data_source_info=dict(document.data_source_info or {}),
                doc_form=dataset.chunk_structure or document.doc_form,
                technique=dataset.indexing_technique or IndexTechniqueType.HIGH_QUALITY,
                rule=rule,
                upload=upload,
            ),
            document.indexing_status,
        )


def _rule(session: orm.Session, document: Document) -> chunking.ProcessRule:
    if document.dataset_process_rule_id is None:
        mode = (
            ProcessRuleMode.HIERARCHICAL
            if document.doc_form is IndexStructureType.PARENT_CHILD_INDEX
            else ProcessRuleMode.AUTOMATIC
        )
        return chunking.parse_rule(mode.value, None)
    rule = session.get(DatasetProcessRule, document.dataset_process_rule_id, populate_existing=True)
    if rule is None:
        raise PermanentError(
            f"process rule {document.dataset_process_rule_id} of document {document.id} not found"
        )
    return chunking.parse_rule(rule.mode.value, rule.rules)


def _upload(session: orm.Session, document: Document) -> tuple[str, str] | None:
    if document.data_source_type is not DataSourceType.UPLOAD_FILE:
        return None
    file_id = (document.data_source_info or {}).get("upload_file_id")
    if not file_id:
        raise PermanentError(f"document {document.id} has no upload_file_id")
    upload = session.get(
        UploadFile, as_uuid(file_id, what="upload_file_id"), populate_existing=True
    )
    if upload is None:
        raise PermanentError(f"upload file {file_id} of document {document.id} not found")
    return upload.key, upload.extension
