"""A dataset with paragraph, QA and parent-child documents, uploaded sources and an image
linked from a segment, and a count of everything in it, for the cleanup tests."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from tests import annotations, factories
from tests import segments as seg
from tests.uow import run
from worker import db, runtime
from worker.domain.models import (
    AppDatasetJoin,
    ChildChunk,
    CreatorUserRole,
    Dataset,
    DatasetAutoDisableLog,
    DatasetMetadata,
    DatasetMetadataBinding,
    DatasetMetadataType,
    DatasetProcessRule,
    DatasetQuery,
    DatasetQuerySource,
    Document,
    DocumentSegment,
    EmbeddingVector,
    KeywordEntry,
    Tenant,
    UploadFile,
)
from worker.domain.segment_ops import imports
from worker.domain.vectors import collection_name

#: Every table with a ``dataset_id`` column this scenario fills.
TABLES: tuple[Any, ...] = (Document, DocumentSegment, ChildChunk, DatasetProcessRule, KeywordEntry)


@dataclass(frozen=True)
class Scenario:
    dataset_id: str
    documents: list[seg.Doc]
    #: Upload file id -> storage key (the sources and the image).
    files: dict[str, str]


def build(storage: Path) -> Scenario:
    """Three documents (one per form) of one dataset, 3 segments each; the first segment of the
    paragraph document links an uploaded image."""
    with db.session_scope() as session:
        tenant = factories.make_tenant(session)
        dataset = factories.make_dataset(session, tenant)
        image = factories.make_upload(session, tenant, storage, "chart.png", b"\x89PNG image")
        tenant_id, dataset_id, image_id, image_key = (
            str(tenant.id), str(dataset.id), str(image.id), image.key,
        )  # fmt: skip
    docs = []
    for position, form in enumerate(seg.FORMS, start=1):
        with db.session_scope() as session:
            doc = seg.add_completed_document(
                session, uuid.UUID(dataset_id), form, storage, position
            )
        docs.append(doc)
        rows = seg.rows(form)
        if position == 1:
            link = f"![image](https://dify.example/files/{image_id}/file-preview?sign=x)"
            rows[0]["content"] += " " + link
        run(
            imports.batch_create, runtime.current().pipeline, job_id=str(uuid.uuid4()),
            content=rows, dataset_id=dataset_id, document_id=doc.document_id,
            tenant_id=tenant_id, user_id=str(factories.USER),
        )  # fmt: skip
    with db.session_scope() as session:
        _dataset_rows(session, uuid.UUID(tenant_id), uuid.UUID(dataset_id), docs[0])
        files = dict(session.execute(sa.select(UploadFile.id, UploadFile.key)).all())
    assert image_key in files.values()
    return Scenario(dataset_id, docs, {str(k): v for k, v in files.items()})


def _dataset_rows(
    session: orm.Session, tenant_id: uuid.UUID, dataset_id: uuid.UUID, doc: seg.Doc
) -> None:
    """A metadata field bound to ``doc``, a query, an auto-disable log and an app's join."""
    tenant = session.get(Tenant, tenant_id)
    assert tenant is not None
    document_id = uuid.UUID(doc.document_id)
    field = DatasetMetadata(
        tenant_id=tenant_id, dataset_id=dataset_id, type=DatasetMetadataType.STRING,
        name="author", created_by=factories.USER,
    )  # fmt: skip
    session.add(field)
    session.flush()
    app = annotations.make_app(session, tenant)
    session.add_all(
        [
            DatasetMetadataBinding(
                tenant_id=tenant_id, dataset_id=dataset_id, metadata_id=field.id,
                document_id=document_id, created_by=factories.USER,
            ),
            DatasetQuery(
                dataset_id=dataset_id, content="what?", source=DatasetQuerySource.HIT_TESTING,
                created_by_role=CreatorUserRole.ACCOUNT, created_by=factories.USER,
            ),
            DatasetAutoDisableLog(
                tenant_id=tenant_id, dataset_id=dataset_id, document_id=document_id
            ),
            AppDatasetJoin(app_id=app.id, dataset_id=dataset_id),
        ]
    )  # fmt: skip


def dataset_tables(session: orm.Session) -> list[str]:
    """Every table of the schema with a ``dataset_id`` column."""
    return list(
        session.scalars(
            sa.text(
                "SELECT table_name FROM information_schema.columns"
                " WHERE table_schema = current_schema() AND column_name = 'dataset_id'"
                " ORDER BY table_name"
            )
        )
    )


def counts(dataset_id: str, document_id: str | None = None) -> dict[str, int]:
    """Rows referencing the dataset (or one of its documents) per table, vectors included."""
    ident = uuid.UUID(dataset_id)
    found: dict[str, int] = {}
    with db.session_scope() as session:
        if document_id is None:
            for name in dataset_tables(session):
                query = sa.text(f"SELECT count(*) FROM {name} WHERE dataset_id = :d")
                found[name] = int(session.scalar(query, {"d": ident}) or 0)
        for table in TABLES:
            query = sa.select(sa.func.count()).where(table.dataset_id == ident)
            if document_id is not None:
                if table is DatasetProcessRule:
                    continue
                key = table.id if table is Document else table.document_id
                query = query.where(key == uuid.UUID(document_id))
            found[table.__tablename__] = int(session.scalar(query) or 0)
        vectors = sa.select(sa.func.count()).where(
            EmbeddingVector.collection == collection_name(dataset_id)
        )
        if document_id is not None:
            vectors = vectors.where(EmbeddingVector.document_id == uuid.UUID(document_id))
        found["embedding_vectors"] = int(session.scalar(vectors) or 0)
        found["datasets"] = int(
            session.scalar(sa.select(sa.func.count()).where(Dataset.id == ident)) or 0
        )
    return found


def upload_rows(file_ids: list[str]) -> int:
    with db.session_scope() as session:
        return int(
            session.scalar(
                sa.select(sa.func.count()).where(
                    UploadFile.id.in_([uuid.UUID(f) for f in file_ids])
                )
            )
            or 0
        )
