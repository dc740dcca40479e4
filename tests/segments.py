"""Completed documents of each form, and what their index holds, for the segment tests."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import orm

from tests import factories
from worker import db, runtime
from worker.domain.models import (
    ChildChunk,
    Dataset,
    DocumentSegment,
    EmbeddingVector,
    IndexingStatus,
    IndexStructureType,
    KeywordEntry,
    ProcessRuleMode,
    Tenant,
)
from worker.domain.vectors import collection_name

FORMS = [
    IndexStructureType.PARAGRAPH_INDEX,
    IndexStructureType.QA_INDEX,
    IndexStructureType.PARENT_CHILD_INDEX,
]
#: Parent-child rule: children cut at each sentence.
HIERARCHICAL = {
    "parent_mode": "paragraph",
    "segmentation": {"separator": "\n\n", "max_tokens": 500, "chunk_overlap": 0},
    "subchunk_segmentation": {"separator": ". ", "max_tokens": 50, "chunk_overlap": 0},
}


@dataclass(frozen=True)
class Doc:
    tenant_id: str
    dataset_id: str
    document_id: str
    form: IndexStructureType


def rows(form: IndexStructureType, count: int = 3) -> list[dict[str, str]]:
    """CSV rows of the form: parent-child contents have two sentences (two children)."""
    made = []
    for i in range(count):
        row = {"content": f"Topic {i} explains item {i}. Then it lists detail {i}."}
        if form is IndexStructureType.QA_INDEX:
            row = {"content": f"What is item {i}?", "answer": f"Item {i} is a thing."}
        made.append(row)
    return made


def make_completed_document(
    form: IndexStructureType, storage: Path | None = None, tenant: Tenant | None = None
) -> Doc:
    """An empty, completed, enabled document of ``form`` (from an uploaded file) in a
    high-quality dataset of its own."""
    storage = storage or runtime.current().settings.storage_local_path
    with db.session_scope() as session:
        tenant = tenant or factories.make_tenant(session)
        dataset = factories.make_dataset(session, tenant)
        return add_completed_document(session, dataset.id, form, storage)


def add_completed_document(
    session: orm.Session,
    dataset_id: uuid.UUID,
    form: IndexStructureType,
    storage: Path,
    position: int = 1,
) -> Doc:
    """An empty, completed, enabled document of ``form`` (from an uploaded file) in the
    dataset."""
    dataset = session.get(Dataset, dataset_id)
    assert dataset is not None
    rule = None
    if form is IndexStructureType.PARENT_CHILD_INDEX:
        rule = factories.make_rule(session, dataset, ProcessRuleMode.HIERARCHICAL, HIERARCHICAL)
    document = factories.make_upload_document(
        session, dataset, storage, f"source-{position}.md", b"Source text.", position=position,
        doc_form=form, indexing_status=IndexingStatus.COMPLETED,
        dataset_process_rule_id=rule.id if rule else None,
    )  # fmt: skip
    return Doc(str(dataset.tenant_id), str(dataset.id), str(document.id), form)


def segment_rows(document_id: str) -> list[DocumentSegment]:
    with db.session_scope() as session:
        found = session.scalars(
            sa.select(DocumentSegment)
            .where(DocumentSegment.document_id == uuid.UUID(document_id))
            .order_by(DocumentSegment.position)
        )
        segments = list(found)
        session.expunge_all()
        return segments


def vectors_of(doc: Doc) -> dict[str, str]:
    """node id -> parent node id of the document's vectors."""
    with db.session_scope() as session:
        found = session.execute(
            sa.select(EmbeddingVector.node_id, EmbeddingVector.metadata_["parent_id"].astext).where(
                EmbeddingVector.collection == collection_name(doc.dataset_id),
                EmbeddingVector.document_id == uuid.UUID(doc.document_id),
            )
        )
        return {node: parent for node, parent in found}


def keyword_nodes(doc: Doc) -> set[str]:
    with db.session_scope() as session:
        return set(
            session.scalars(
                sa.select(KeywordEntry.node_id).where(
                    KeywordEntry.document_id == uuid.UUID(doc.document_id)
                )
            )
        )


def child_count(document_id: str) -> int:
    with db.session_scope() as session:
        return int(
            session.scalar(
                sa.select(sa.func.count()).where(ChildChunk.document_id == uuid.UUID(document_id))
            )
            or 0
        )


def set_enabled(segment_id: uuid.UUID, enabled: bool) -> None:
    with db.session_scope() as session:
        session.execute(
            sa.update(DocumentSegment)
            .where(DocumentSegment.id == segment_id)
            .values(enabled=enabled)
        )
