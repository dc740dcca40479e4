"""Upload a PDF and a Markdown file, defer indexing in the same transaction, let a real worker
process index them, then search."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests import documents, factories
from tests.acceptance.workers import WorkerProcess
from worker import db, runtime
from worker.config import Settings
from worker.domain.models import Document, DocumentSegment, IndexingStatus, SegmentStatus
from worker.tasks import document_indexing_task

pytestmark = pytest.mark.slow


@pytest.fixture
def storage(tmp_path: Path) -> Path:
    return tmp_path / "storage"


@pytest.fixture(autouse=True)
def task_layer(database_url: str, storage: Path) -> Iterator[runtime.Runtime]:
    yield runtime.setup(database_url, settings=Settings(storage_local_path=storage))
    runtime.teardown()


def test_uploaded_pdf_and_markdown_are_indexed_and_searchable(
    database_url: str, storage: Path
) -> None:
    with db.session_scope() as session:
        tenant = factories.make_tenant(session)
        dataset = factories.make_dataset(session, tenant)
        pdf = factories.make_upload_document(
            session, dataset, storage, "lighthouse.pdf", documents.make_pdf(), position=1
        )
        md = factories.make_upload_document(
            session, dataset, storage, "onboarding.md", documents.MARKDOWN.encode(), position=2
        )
        result = document_indexing_task.delay(str(dataset.id), [str(pdf.id), str(md.id)])
    worker = WorkerProcess(database_url, env={"STORAGE_LOCAL_PATH": str(storage)})
    try:
        outcome = result.get(timeout=60)
    finally:
        worker.close()

    assert outcome == {str(pdf.id): "completed", str(md.id): "completed"}
    pipeline = runtime.current().pipeline
    with db.session_scope() as session:
        docs = {d.id: d for d in session.scalars(sa.select(Document))}
        segments = list(session.scalars(sa.select(DocumentSegment)))
        assert {d.indexing_status for d in docs.values()} == {IndexingStatus.COMPLETED}
        assert all(d.completed_at and d.word_count and d.tokens for d in docs.values())
        assert segments and {s.status for s in segments} == {SegmentStatus.COMPLETED}
        collection = pipeline.vectors.collection_name(str(dataset.id))
        assert pipeline.vectors.count(session, collection) == len(segments)
        query = pipeline.embedder.embed([documents.PDF_SENTENCES[1]]).vectors[0]
        hits = pipeline.vectors.search(session, collection, query, top_k=3)
    assert hits[0].document_id == str(pdf.id)
    assert documents.PDF_SENTENCES[1] in hits[0].content
