"""A worker SIGKILLed in the middle of a document: a restarted worker finishes it, once."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tests import documents, factories
from tests.acceptance.workers import WorkerProcess, wait_until
from worker import db, runtime
from worker.config import Settings
from worker.domain.embedding import LocalEmbedder
from worker.domain.models import Document, DocumentSegment, IndexingStatus, ProcessRuleMode
from worker.tasks import document_indexing_task

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def task_layer(database_url: str, tmp_path: Path) -> Iterator[None]:
    runtime.setup(database_url, settings=Settings(storage_local_path=tmp_path / "storage"))
    yield
    runtime.teardown()


def slow_embeddings(httpserver: HTTPServer) -> None:
    """An OpenAI-compatible embeddings endpoint that takes 0.15 s per request."""
    embedder = LocalEmbedder(64)

    def handle(request: Request) -> Response:
        time.sleep(0.15)
        texts = request.get_json()["input"]
        vectors = embedder.embed(texts).vectors
        body = {"data": [{"index": i, "embedding": v} for i, v in enumerate(vectors)],
                "usage": {"total_tokens": len(texts)}}  # fmt: skip
        return Response(json.dumps(body), 200, content_type="application/json")

    httpserver.expect_request("/v1/embeddings", method="POST").respond_with_handler(handle)


def completed_segments(document_id: str) -> int:
    with db.session_scope() as session:
        return int(
            session.scalar(
                sa.select(sa.func.count()).where(
                    DocumentSegment.document_id == document_id,
                    DocumentSegment.status == "completed",
                )
            )
            or 0
        )


def test_killed_mid_document_ends_completed_without_duplicates(
    httpserver: HTTPServer, database_url: str, tmp_path: Path
) -> None:
    slow_embeddings(httpserver)
    storage = tmp_path / "storage"
    with db.session_scope() as session:
        dataset = factories.make_dataset(session, factories.make_tenant(session))
        rule = factories.make_rule(
            session, dataset, ProcessRuleMode.CUSTOM,
            {"pre_processing_rules": [],
             "segmentation": {"separator": "\\n\\n", "max_tokens": 60, "chunk_overlap": 0}},
        )  # fmt: skip
        doc = factories.make_upload_document(
            session, dataset, storage, "corpus.md", documents.corpus(40).encode(),
            dataset_process_rule_id=rule.id,
        )  # fmt: skip
        result = document_indexing_task.delay(str(dataset.id), [str(doc.id)])
        doc_id = str(doc.id)
    env = {
        "STORAGE_LOCAL_PATH": str(storage),
        "WORKER_EMBEDDING_PROVIDER": "openai",
        "WORKER_EMBEDDING_BASE_URL": httpserver.url_for("/v1"),
        "WORKER_EMBEDDING_MODEL": "slow-test",
        "WORKER_INDEXING_BATCH_SIZE": "2",
    }
    first = WorkerProcess(database_url, env=env)
    try:
        wait_until(lambda: completed_segments(doc_id) >= 4, timeout=60)
        first.kill()
        assert completed_segments(doc_id) < 40, "killed before the end"
        second = WorkerProcess(database_url, env=env)
        try:
            assert result.get(timeout=90) == {doc_id: "completed"}
        finally:
            second.close()
    finally:
        first.close()

    pipeline = runtime.current().pipeline
    with db.session_scope() as session:
        status = session.scalar(sa.select(Document.indexing_status).where(Document.id == doc_id))
        positions = list(session.scalars(sa.select(DocumentSegment.position)))
        vectors = pipeline.vectors.count(
            session, pipeline.vectors.collection_name(str(dataset.id)), document_id=doc_id
        )
    assert status is IndexingStatus.COMPLETED
    assert len(positions) == len(set(positions)) == 40
    assert vectors == 40
