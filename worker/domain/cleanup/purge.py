"""What the cleanup jobs delete, in bounded, resumable batches.

A cleanup runs after the rows it is for were deleted. If one of them still exists (the defer
was made outside the deleting transaction, which has not committed or rolled back), the job
deletes nothing and fails with :class:`StillExists`, a transient error: its task retries for a
bounded time, then fails for good. Vectors and keyword rows go in batches of at most
:data:`BATCH` rows, each a short step; a file's blob is deleted before its row (a missing blob
counts as deleted), so a crash leaves at worst a row whose blob is gone, which the re-run
deletes. Re-running any cleanup ends in the same state.
"""

from __future__ import annotations

import logging
import typing
import uuid
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from worker.domain import sources
from worker.domain.errors import TransientError
from worker.domain.models import Dataset, Document, EmbeddingVector, KeywordEntry, UploadFile
from worker.domain.pipeline import Pipeline
from worker.domain.ports import Storage
from worker.domain.uow import UnitOfWork

logger = logging.getLogger(__name__)

#: Most rows one statement deletes.
BATCH = 1000


class StillExists(TransientError):
    """The dataset or document to clean up still exists: its deletion has not committed."""


def _rowcount(result: sa.Result[Any]) -> int:
    return typing.cast("sa.CursorResult[Any]", result).rowcount


def _drop_batches(uow: UnitOfWork, table: Any, *conditions: sa.ColumnElement[bool]) -> int:
    """Delete ``table``'s rows matching ``conditions``, :data:`BATCH` per step."""
    total = 0
    while True:
        chosen = sa.select(table.id).where(*conditions).limit(BATCH).scalar_subquery()
        with uow.step() as session:
            deleted = _rowcount(session.execute(sa.delete(table).where(table.id.in_(chosen))))
        total += deleted
        if deleted < BATCH:
            return total


def drop_index(
    uow: UnitOfWork, p: Pipeline, dataset_id: uuid.UUID, document_id: uuid.UUID | None = None
) -> tuple[int, int]:
    """Delete the vectors and keyword rows of a dataset (or of one of its documents)."""
    vectors = [EmbeddingVector.collection == p.vectors.collection_name(str(dataset_id))]
    keywords = [KeywordEntry.dataset_id == dataset_id]
    if document_id is not None:
        vectors.append(EmbeddingVector.document_id == document_id)
        keywords.append(KeywordEntry.document_id == document_id)
    return _drop_batches(uow, EmbeddingVector, *vectors), _drop_batches(
        uow, KeywordEntry, *keywords
    )


def delete_files(uow: UnitOfWork, storage: Storage, file_ids: Sequence[str]) -> int:
    """Delete upload files: each batch's blobs (no transaction open), then their rows."""
    ids = sorted({sources.as_uuid(f, what="upload file id") for f in file_ids if f})
    deleted = 0
    for start in range(0, len(ids), BATCH):
        batch = ids[start : start + BATCH]
        with uow.step() as session:
            found = session.execute(
                sa.select(UploadFile.id, UploadFile.key).where(UploadFile.id.in_(batch))
            ).all()
        for _, key in found:
            storage.delete(key)  # a missing blob is not an error
        with uow.step() as session:
            session.execute(sa.delete(UploadFile).where(UploadFile.id.in_([i for i, _ in found])))
        deleted += len(found)
    return deleted


def clean_documents(
    uow: UnitOfWork,
    p: Pipeline,
    dataset_id: str,
    document_ids: Sequence[str],
    file_ids: Sequence[str],
) -> str:
    """Delete the index entries and files of deleted documents.

    Raises
    ------
    StillExists
        One of the documents still exists: nothing is deleted.
    """
    dataset = sources.as_uuid(dataset_id, what="dataset id")
    documents = [sources.as_uuid(d, what="document id") for d in document_ids]
    with uow.step() as session:
        live = session.scalars(sa.select(Document.id).where(Document.id.in_(documents))).all()
    if live:
        raise StillExists(f"document(s) {', '.join(map(str, live))} still exist: not cleaned")
    vectors = keywords = 0
    for document in documents:
        v, k = drop_index(uow, p, dataset, document)
        vectors, keywords = vectors + v, keywords + k
    files = delete_files(uow, p.storage, file_ids)
    return _summary(vectors, keywords, files)


def clean_dataset(uow: UnitOfWork, p: Pipeline, dataset_id: str, file_ids: Sequence[str]) -> str:
    """Delete a deleted dataset's vectors, keyword rows and files.

    Raises
    ------
    StillExists
        The dataset still exists: nothing is deleted.
    """
    dataset = sources.as_uuid(dataset_id, what="dataset id")
    with uow.step() as session:
        if session.get(Dataset, dataset, populate_existing=True) is not None:
            raise StillExists(f"dataset {dataset} still exists: not cleaned")
    vectors, keywords = drop_index(uow, p, dataset)
    files = delete_files(uow, p.storage, file_ids)
    return _summary(vectors, keywords, files)


def clean_notion_documents(
    uow: UnitOfWork, p: Pipeline, dataset_id: str, document_ids: Sequence[str]
) -> str:
    """Delete documents a Notion re-import no longer selects (this job deletes their rows):
    index entries first, then the row (its segments cascade); gone documents are skipped."""
    dataset = sources.as_uuid(dataset_id, what="dataset id")
    vectors = keywords = rows = 0
    for document_id in document_ids:
        document = sources.as_uuid(document_id, what="document id")
        v, k = drop_index(uow, p, dataset, document)
        with uow.step() as session:
            rows += _rowcount(
                session.execute(
                    sa.delete(Document).where(
                        Document.id == document, Document.dataset_id == dataset
                    )
                )
            )
        vectors, keywords = vectors + v, keywords + k
    return f"deleted {rows} document(s), " + _summary(vectors, keywords, 0)


def _summary(vectors: int, keywords: int, files: int) -> str:
    return f"deleted {vectors} vector(s), {keywords} keyword row(s), {files} file(s)"
