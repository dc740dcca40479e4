"""What app code calls besides tasks: search a dataset, upload a file, add its document.

After ``worker.runtime.setup()`` (which reads the worker's settings from the environment),
these use the same storage and the same embedder as the worker, so that a file uploaded here is
the file the indexing task reads, and a query is embedded by the model that built the index.
Each joins the open ``worker.db.session_scope()`` (or ``session=``): an upload, its document
and the indexing job deferred next commit together, or not at all::

    with db.session_scope() as session:
        upload = api.upload_file(tenant_id=t, created_by=u, name="faq.pdf", data=pdf)
        document = api.create_document(dataset_id=d, upload=upload, created_by=u)
        document_indexing_task.delay(str(d), [str(document.id)])

    hits = api.search(d, "how do I reset my password?")  # as the dataset's retrieval_model says
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy import orm

from worker import db, runtime
from worker.domain import ops_trace, retrieval, uploads
from worker.domain.models import CreatorUserRole, Document, DocumentCreatedFrom, UploadFile
from worker.domain.retrieval import RetrievalModel, RetrievedSegment, SearchMethod

__all__ = [
    "RetrievalModel",
    "RetrievedSegment",
    "SearchMethod",
    "create_document",
    "data_source_info",
    "delete_app",
    "search",
    "trace",
    "upload_file",
]

data_source_info = uploads.data_source_info


def search(
    dataset_id: uuid.UUID | str,
    query: str,
    *,
    search_method: SearchMethod | str | None = None,
    top_k: int | None = None,
    score_threshold: float | None = None,
    session: orm.Session | None = None,
) -> list[RetrievedSegment]:
    """The dataset's segments best matching ``query``, best first.

    The dataset's ``retrieval_model`` decides the search (semantic, full-text or hybrid, top
    k, score threshold, hybrid weights); the keyword arguments override it for this call.
    ``top_k`` results whenever the dataset has that many matching segments.

    Raises
    ------
    worker.domain.retrieval.DatasetNotFound
        No such dataset.
    worker.domain.retrieval.InvalidRetrievalModel
        An override, or the dataset's ``retrieval_model``, is out of range.
    worker.domain.retrieval.EmbedderMismatch
        This process embeds with another model than the one that built the index.
    worker.db.NotSetUp
        ``runtime.setup()`` was not called.
    """
    pipeline = runtime.current().pipeline
    with _session(session) as scoped:
        return retrieval.search(
            scoped, pipeline, str(dataset_id), query,
            method=search_method, top_k=top_k, score_threshold=score_threshold,
        )  # fmt: skip


def upload_file(
    *,
    tenant_id: uuid.UUID | str,
    created_by: uuid.UUID | str,
    name: str,
    data: bytes,
    mime_type: str | None = None,
    created_by_role: CreatorUserRole = CreatorUserRole.ACCOUNT,
    session: orm.Session | None = None,
) -> UploadFile:
    """Store a file in the worker's storage and add its ``upload_files`` row (see
    :func:`worker.domain.uploads.upload_file`); a rollback deletes the file again."""
    storage = runtime.current().pipeline.storage
    with _session(session) as scoped:
        return uploads.upload_file(
            scoped, storage, tenant_id=tenant_id, created_by=created_by, name=name, data=data,
            mime_type=mime_type, created_by_role=created_by_role,
        )  # fmt: skip


def create_document(
    *,
    dataset_id: uuid.UUID | str,
    upload: UploadFile,
    created_by: uuid.UUID | str,
    name: str | None = None,
    process_rule_id: uuid.UUID | str | None = None,
    created_from: DocumentCreatedFrom = DocumentCreatedFrom.API,
    session: orm.Session | None = None,
) -> Document:
    """Add a document of an uploaded file to a dataset, waiting to be indexed (see
    :func:`worker.domain.uploads.create_document`)."""
    with _session(session) as scoped:
        return uploads.create_document(
            scoped, dataset_id=dataset_id, upload=upload, created_by=created_by, name=name,
            process_rule_id=process_rule_id, created_from=created_from,
        )  # fmt: skip


def trace(
    app_id: uuid.UUID | str,
    trace_info_type: str,
    trace_info: Mapping[str, Any],
    *,
    session: orm.Session | None = None,
) -> str | None:
    """Write an ops-trace payload (``ops_trace/{app_id}/{file_id}.json``) and defer
    ``process_trace_tasks`` for it, in the caller's transaction (a rollback deletes the file);
    return the file id, or ``None`` when the app has tracing off (nothing written).

    Raises
    ------
    worker.domain.ops_trace.InvalidTraceFile
        ``app_id`` is not a UUID.
    worker.domain.ops_trace.InvalidPayload
        An unknown ``trace_info_type`` (Dify's ``MessageTraceInfo``, ``WorkflowTraceInfo``,
        ...), or ``trace_info`` that is not JSON.
    """
    from worker.tasks.ops_trace import process_trace_tasks

    app = ops_trace.FileInfo.parse({"file_id": "new", "app_id": str(app_id)}).app_id
    storage = runtime.current().pipeline.storage
    with _session(session) as scoped:
        if not ops_trace.provider.tracing_enabled(scoped, app):
            return None
        info = ops_trace.payload.write(
            scoped, storage, app_id=app, trace_info_type=trace_info_type, trace_info=trace_info
        )
        process_trace_tasks.apply_async(
            args=[{"file_id": info.file_id, "app_id": str(app)}], session=scoped
        )
    return info.file_id


def delete_app(app_id: uuid.UUID | str, *, session: orm.Session | None = None) -> bool:
    """Delete an app and defer ``remove_app_and_related_data_task`` in the same transaction:
    both commit or neither does. ``False`` (nothing deferred) when the app does not exist.

    The app's small configuration rows, annotations and dataset joins cascade with it; the job
    deletes the rest in batches (conversations, messages, workflow runs, end users, annotation
    vectors, message files).
    """
    from worker.tasks import app_deletion

    with _session(session) as scoped:
        return app_deletion.delete_app(scoped, str(app_id))


def _session(session: orm.Session | None) -> AbstractContextManager[orm.Session]:
    return contextlib.nullcontext(session) if session is not None else db.session_scope()
