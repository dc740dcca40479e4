"""Uploaded files and the documents made of them, created in the caller's transaction.

The file goes to storage under Dify's key layout (``upload_files/<tenant id>/<uuid>.<ext>``)
before its ``upload_files`` row is added to the caller's session; when that transaction rolls
back, the file is deleted again, so a failed request leaves no file behind. A document of an
uploaded file points at it from ``data_source_info`` (``{"upload_file_id": ...}``), which is
what the indexing tasks read.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from worker.domain.errors import DomainError, PermanentError
from worker.domain.models import (
    CreatorUserRole,
    Dataset,
    DataSourceType,
    Document,
    DocumentCreatedFrom,
    IndexStructureType,
    UploadFile,
)
from worker.domain.ports import Storage

logger = logging.getLogger(__name__)

#: Folder of uploaded files in storage (Dify's).
UPLOAD_FOLDER = "upload_files"
#: Longest file name kept (``upload_files.name`` and ``documents.name`` are 255 characters).
MAX_NAME_LENGTH = 255
#: ``session.info`` key of the storage keys written in the session's open transaction.
_WRITTEN = "uploads_written"
#: ``session.info`` key telling that the session's commits and rollbacks are followed.
_LISTENING = "uploads_listening"


class InvalidUpload(PermanentError):
    """The file or document cannot be created as given."""


def upload_file(
    session: orm.Session,
    storage: Storage,
    *,
    tenant_id: uuid.UUID | str,
    created_by: uuid.UUID | str,
    name: str,
    data: bytes,
    mime_type: str | None = None,
    created_by_role: CreatorUserRole = CreatorUserRole.ACCOUNT,
    storage_type: str = "local",
) -> UploadFile:
    """Store ``data`` and add its ``upload_files`` row to ``session`` (flushed, not committed).

    Parameters
    ----------
    session:
        The caller's session; the row commits or rolls back with its transaction, and a
        rollback deletes the stored file.
    name:
        The file's name as uploaded; its extension (lowercased) picks the text extractor.

    Raises
    ------
    InvalidUpload
        No name, or a name too long.
    TransientError
        Storage refused the write.
    """
    if not name.strip() or len(name) > MAX_NAME_LENGTH:
        raise InvalidUpload(f"file name must have 1 to {MAX_NAME_LENGTH} characters")
    tenant = _uuid(tenant_id, "tenant id")
    extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    key = f"{UPLOAD_FOLDER}/{tenant}/{uuid.uuid4()}" + (f".{extension}" if extension else "")
    storage.save(key, data)
    _delete_on_rollback(session, storage, key)
    upload = UploadFile(
        tenant_id=tenant,
        storage_type=storage_type,
        key=key,
        name=name,
        size=len(data),
        extension=extension,
        mime_type=mime_type,
        created_by_role=created_by_role,
        created_by=_uuid(created_by, "created_by"),
        hash=hashlib.sha3_256(data).hexdigest(),
    )
    session.add(upload)
    session.flush()
    logger.info(
        "uploaded %s (%d bytes) as %s",
        name,
        len(data),
        key,
        extra={"action": "file_uploaded", "upload_file_id": str(upload.id)},
    )
    return upload


def data_source_info(upload: UploadFile) -> dict[str, Any]:
    """A document's ``data_source_info`` for an uploaded file."""
    return {"upload_file_id": str(upload.id)}


def create_document(
    session: orm.Session,
    *,
    dataset_id: uuid.UUID | str,
    upload: UploadFile,
    created_by: uuid.UUID | str,
    name: str | None = None,
    batch: str | None = None,
    process_rule_id: uuid.UUID | str | None = None,
    created_from: DocumentCreatedFrom = DocumentCreatedFrom.API,
    doc_form: IndexStructureType | None = None,
    doc_language: str | None = None,
) -> Document:
    """Add a document of ``upload`` to the dataset, ``waiting`` to be indexed, last in position.

    The caller defers its indexing in the same transaction
    (``document_indexing_task.delay(dataset_id, [document_id])``).

    Raises
    ------
    InvalidUpload
        No such dataset, or the file belongs to another workspace.
    """
    dataset = session.get(Dataset, _uuid(dataset_id, "dataset id"))
    if dataset is None:
        raise InvalidUpload(f"no dataset {dataset_id}")
    if upload.tenant_id != dataset.tenant_id:
        raise InvalidUpload(
            f"upload file {upload.id} belongs to another workspace than dataset {dataset.id}"
        )
    last = session.scalar(
        sa.select(sa.func.max(Document.position)).where(Document.dataset_id == dataset.id)
    )
    document = Document(
        tenant_id=dataset.tenant_id,
        dataset_id=dataset.id,
        position=(last or 0) + 1,
        data_source_type=DataSourceType.UPLOAD_FILE,
        data_source_info=data_source_info(upload),
        dataset_process_rule_id=None
        if process_rule_id is None
        else _uuid(process_rule_id, "process rule id"),
        batch=batch or uuid.uuid4().hex[:20],
        name=(name or upload.name)[:MAX_NAME_LENGTH],
        created_from=created_from,
        created_by=_uuid(created_by, "created_by"),
        doc_form=doc_form or dataset.chunk_structure or IndexStructureType.PARAGRAPH_INDEX,
        doc_language=doc_language,
    )
    session.add(document)
    session.flush()
    return document


def _uuid(value: uuid.UUID | str, what: str) -> uuid.UUID:
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(value)
    except ValueError:
        raise InvalidUpload(f"{what} is not a UUID: {value!r}") from None


def _delete_on_rollback(session: orm.Session, storage: Storage, key: str) -> None:
    """Remember ``key`` until the session's transaction ends: deleted if it rolls back."""
    if not session.info.get(_LISTENING):
        session.info[_LISTENING] = True  # once per session, for its later transactions too
        sa.event.listen(session, "after_commit", _forget_written)
        sa.event.listen(session, "after_rollback", _delete_written)
    session.info.setdefault(_WRITTEN, []).append((storage, key))


def _forget_written(session: orm.Session) -> None:
    session.info.pop(_WRITTEN, None)


def _delete_written(session: orm.Session) -> None:
    for storage, key in session.info.pop(_WRITTEN, []):
        try:
            storage.delete(key)
        except DomainError as exc:
            logger.warning(
                "could not delete %s, uploaded in a transaction that rolled back: %s",
                key,
                exc,
                extra={"action": "upload_orphaned", "storage_key": key},
            )
