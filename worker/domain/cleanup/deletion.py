"""Deleting documents and datasets from app code, in the app's own transaction.

Each service collects what the cascade will hide (the source upload files of ``upload_file``
documents; images linked from segment text, found as Dify's ``get_image_upload_file_ids``
does), deletes the rows and defers the cleanup job with those ids in the same session: both
commit or neither does. A cleanup job therefore never runs for a deletion that rolled back.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy import orm

from worker.domain.models import Dataset, DataSourceType, Document, DocumentSegment

#: ``![image](http(s)://.../files/<upload file id>/file-preview|image-preview...)``.
IMAGE_LINK = re.compile(
    r"!\[image\]\(https?://[^)\s]*?files/([0-9a-fA-F-]{36})/(?:file|image)-preview"
)


class Deferrable(Protocol):
    """A cleanup task, deferred in the caller's session (``worker.jobs.CeleryTask``)."""

    def apply_async(
        self, *, kwargs: Mapping[str, Any], session: orm.Session | None = None
    ) -> object: ...


def image_file_ids(texts: Iterable[str]) -> list[str]:
    """Upload file ids of the images linked from ``texts``, first occurrence first."""
    found: dict[str, None] = {}
    for text in texts:
        for match in IMAGE_LINK.finditer(text):
            found.setdefault(match.group(1).lower())
    return list(found)


def _documents(session: orm.Session, *conditions: sa.ColumnElement[bool]) -> list[Document]:
    return list(session.scalars(sa.select(Document).where(*conditions).with_for_update()))


def _source_files(documents: Sequence[Document]) -> list[str]:
    files = (
        (d.data_source_info or {}).get("upload_file_id")
        for d in documents
        if d.data_source_type is DataSourceType.UPLOAD_FILE
    )
    return [str(f) for f in files if f]


def _images(session: orm.Session, *conditions: sa.ColumnElement[bool]) -> list[str]:
    contents = session.scalars(
        sa.select(DocumentSegment.content).where(
            *conditions, DocumentSegment.content.contains("![image](")
        )
    )
    return image_file_ids(contents)


def delete_documents(
    session: orm.Session, dataset_id: str, document_ids: Sequence[str], *, clean: Deferrable
) -> list[str]:
    """Delete documents of a dataset and defer ``batch_clean_document_task`` for them.

    Returns the ids deleted (missing ones are skipped; nothing is deferred when none is left).
    """
    dataset = uuid.UUID(str(dataset_id))
    ids = [uuid.UUID(str(d)) for d in document_ids]
    documents = _documents(session, Document.dataset_id == dataset, Document.id.in_(ids))
    if not documents:
        return []
    found = [d.id for d in documents]
    images = _images(session, DocumentSegment.document_id.in_(found))
    session.execute(sa.delete(Document).where(Document.id.in_(found)))
    clean.apply_async(
        kwargs={
            "document_ids": [str(d) for d in found],
            "dataset_id": str(dataset),
            "doc_form": documents[0].doc_form.value,
            "file_ids": _source_files(documents),
            "image_file_ids": images,
        },
        session=session,
    )
    return [str(d) for d in found]


def delete_document(session: orm.Session, document_id: str, *, clean: Deferrable) -> bool:
    """Delete one document and defer ``clean_document_task``; ``False`` if it is missing."""
    documents = _documents(session, Document.id == uuid.UUID(str(document_id)))
    if not documents:
        return False
    (document,) = documents
    images = _images(session, DocumentSegment.document_id == document.id)
    files = _source_files(documents)
    session.execute(sa.delete(Document).where(Document.id == document.id))
    clean.apply_async(
        kwargs={
            "document_id": str(document.id),
            "dataset_id": str(document.dataset_id),
            "doc_form": document.doc_form.value,
            "file_id": files[0] if files else None,
            "image_file_ids": images,
        },
        session=session,
    )
    return True


def delete_dataset(session: orm.Session, dataset_id: str, *, clean: Deferrable) -> bool:
    """Delete a dataset (its rows cascade) and defer ``clean_dataset_task``; ``False`` if it
    is missing."""
    dataset = session.get(Dataset, uuid.UUID(str(dataset_id)), with_for_update=True)
    if dataset is None:
        return False
    documents = _documents(session, Document.dataset_id == dataset.id)
    images = _images(session, DocumentSegment.dataset_id == dataset.id)
    kwargs = {
        "dataset_id": str(dataset.id),
        "tenant_id": str(dataset.tenant_id),
        "indexing_technique": dataset.indexing_technique.value
        if dataset.indexing_technique
        else None,
        "index_struct": json.dumps(dataset.index_struct) if dataset.index_struct else None,
        "collection_binding_id": str(dataset.collection_binding_id)
        if dataset.collection_binding_id
        else None,
        "doc_form": _doc_form(dataset, documents),
        "upload_file_ids": _source_files(documents),
        "image_file_ids": images,
    }
    session.execute(sa.delete(Dataset).where(Dataset.id == dataset.id))
    clean.apply_async(kwargs=kwargs, session=session)
    return True


def _doc_form(dataset: Dataset, documents: Sequence[Document]) -> str | None:
    form = dataset.chunk_structure or (documents[0].doc_form if documents else None)
    return None if form is None else form.value
