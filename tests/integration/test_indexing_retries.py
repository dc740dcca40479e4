"""Indexing jobs against an embedding endpoint (and Notion) that fail: transient failures retry
and the document resumes from its rows; permanent ones, and the last attempt, end in ``error``.

The jobs run in the real worker loop in this process (``drain``); a job waiting for its retry is
made runnable at once by moving its ``scheduled_at`` back (the policy waits 10 s and more).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
import sqlalchemy as sa
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tests import documents, factories
from tests.inprocess import drain as drain_queues
from tests.uow import run
from worker import db, queues, runtime
from worker.config import Settings
from worker.domain import indexing
from worker.domain.embedding import LocalEmbedder
from worker.domain.models import (
    DataSourceType,
    Document,
    DocumentSegment,
    IndexingStatus,
    ProcessRuleMode,
)
from worker.jobs import FAILURE, RETRY, SUCCESS, AsyncResult
from worker.tasks import (
    add_document_to_index_task,
    deal_dataset_vector_index_task,
    document_indexing_sync_task,
    document_indexing_task,
    remove_document_from_index_task,
)
from worker.tasks.indexing import INDEXING_RETRY

#: One segment per paragraph of ``documents.corpus``.
ONE_SEGMENT_PER_PARAGRAPH = {
    "pre_processing_rules": [],
    "segmentation": {"separator": "\\n\\n", "max_tokens": 60, "chunk_overlap": 0},
}


class Endpoint:
    """An OpenAI-compatible ``/v1/embeddings`` that answers ``failures`` (an HTTP status per
    request, ``None`` for a normal reply) and then normal replies. It records the texts of each
    request and the status each document of the dataset had when the request came."""

    def __init__(
        self,
        httpserver: HTTPServer,
        failures: Sequence[int | None] = (),
        *,
        fails: Callable[[list[str]], int | None] = lambda texts: None,
    ) -> None:
        self.failures = list(failures)
        self.fails = fails
        self.requests: list[list[str]] = []
        self.statuses: set[IndexingStatus] = set()
        self.local = LocalEmbedder(64)
        httpserver.expect_request("/v1/embeddings", method="POST").respond_with_handler(self)

    def __call__(self, request: Request) -> Response:
        texts: list[str] = request.get_json()["input"]
        self.requests.append(texts)
        with db.session_scope() as session:
            self.statuses.update(session.scalars(sa.select(Document.indexing_status)))
        status = self.failures.pop(0) if self.failures else self.fails(texts)
        if status is not None:
            body = {"error": {"message": f"answering {status}", "type": "test"}}
            return Response(json.dumps(body), status, content_type="application/json")
        vectors = self.local.embed(texts).vectors
        body = {"data": [{"index": i, "embedding": v} for i, v in enumerate(vectors)],
                "usage": {"total_tokens": len(texts)}}  # fmt: skip
        return Response(json.dumps(body), 200, content_type="application/json")


@pytest.fixture
def storage(tmp_path: Path) -> Path:
    return tmp_path / "storage"


@pytest.fixture(autouse=True)
def task_layer(database_url: str, storage: Path, httpserver: HTTPServer) -> Iterator[None]:
    runtime.setup(database_url, settings=Settings(
        storage_local_path=storage, embedding_provider="openai", embedding_model="retry-test",
        embedding_base_url=httpserver.url_for("/v1"), indexing_batch_size=2, http_timeout=5,
        notion_integration_token="secret", notion_api_base_url=httpserver.url_for("/notion"),
    ))  # fmt: skip
    yield
    runtime.teardown()


def drain() -> None:
    drain_queues([queues.DATASET])


def retry_now() -> None:
    """Make jobs waiting for their retry runnable at once."""
    with db.session_scope() as session:
        session.execute(
            sa.text("UPDATE procrastinate_jobs SET scheduled_at = now() WHERE status = 'todo'")
        )


def make_docs(storage: Path, *texts: tuple[str, str]) -> tuple[str, list[str]]:
    """A dataset with one uploaded document per ``(name, text)``, a segment per paragraph."""
    with db.session_scope() as session:
        dataset = factories.make_dataset(session, factories.make_tenant(session))
        rule = factories.make_rule(
            session, dataset, ProcessRuleMode.CUSTOM, ONE_SEGMENT_PER_PARAGRAPH
        )
        ids = [
            str(factories.make_upload_document(
                session, dataset, storage, name, text.encode(), position=position,
                dataset_process_rule_id=rule.id,
            ).id)
            for position, (name, text) in enumerate(texts, start=1)
        ]  # fmt: skip
        return str(dataset.id), ids


def document(document_id: str) -> Document:
    with db.session_scope() as session:
        row = session.get(Document, document_id)
        assert row is not None
        return row


def completed_segments(document_id: str) -> set[str]:
    """Ids of the document's completed segments."""
    with db.session_scope() as session:
        return {
            str(i)
            for i in session.scalars(
                sa.select(DocumentSegment.id).where(
                    DocumentSegment.document_id == document_id,
                    DocumentSegment.status == "completed",
                )
            )
        }


def vectors(dataset_id: str, document_id: str) -> int:
    p = runtime.current().pipeline
    with db.session_scope() as session:
        return p.vectors.count(
            session, p.vectors.collection_name(dataset_id), document_id=document_id
        )


@pytest.mark.parametrize("status", [503, 429])
def test_a_transient_embedding_failure_is_retried_and_the_document_resumes(
    httpserver: HTTPServer, storage: Path, status: int
) -> None:
    endpoint = Endpoint(httpserver, [None, None, status])  # the third batch fails once
    dataset_id, (doc_id,) = make_docs(storage, ("corpus.md", documents.corpus(10)))
    result = document_indexing_task.delay(dataset_id, [doc_id])

    drain()

    assert result.status == RETRY
    waiting = document(doc_id)
    assert waiting.indexing_status is IndexingStatus.INDEXING, "not error: the job retries"
    assert (waiting.error or "").startswith("retrying: embedding endpoint")
    assert (waiting.error or "").endswith(f"returned HTTP {status}: answering {status}")
    done_before = completed_segments(doc_id)
    assert len(done_before) == 4

    retry_now()
    drain()

    assert result.status == SUCCESS
    assert result.get() == {doc_id: "completed"}
    finished = document(doc_id)
    assert finished.indexing_status is IndexingStatus.COMPLETED and finished.error is None
    assert len(completed_segments(doc_id)) == vectors(dataset_id, doc_id) == 10
    assert done_before <= completed_segments(doc_id), "resumed: its first segments were kept"
    assert len(endpoint.requests) == 6, "five batches, the failed one twice"
    assert IndexingStatus.ERROR not in endpoint.statuses


def test_an_endpoint_that_stays_down_ends_the_document_in_error_after_the_last_retry(
    httpserver: HTTPServer, storage: Path
) -> None:
    endpoint = Endpoint(httpserver, fails=lambda texts: 503)
    dataset_id, (doc_id,) = make_docs(storage, ("corpus.md", documents.corpus(6)))
    result = document_indexing_task.delay(dataset_id, [doc_id])

    for _ in range(INDEXING_RETRY.max_retries):
        drain()
        assert result.status == RETRY
        assert document(doc_id).indexing_status is IndexingStatus.INDEXING
        retry_now()
    drain()

    assert result.status == FAILURE
    assert "returned HTTP 503" in result.info
    failed = document(doc_id)
    assert failed.indexing_status is IndexingStatus.ERROR
    assert failed.error is not None and failed.error.startswith("embedding endpoint")
    assert failed.error.endswith("returned HTTP 503: answering 503")
    assert failed.stopped_at is not None
    assert len(endpoint.requests) == INDEXING_RETRY.max_retries + 1, "one request per run"


def test_a_rejected_request_ends_the_document_in_error_at_once(
    httpserver: HTTPServer, storage: Path
) -> None:
    endpoint = Endpoint(httpserver, [400])
    dataset_id, (doc_id,) = make_docs(storage, ("corpus.md", documents.corpus(6)))
    result = document_indexing_task.delay(dataset_id, [doc_id])

    drain()

    assert result.status == FAILURE
    failed = document(doc_id)
    assert failed.indexing_status is IndexingStatus.ERROR
    assert (failed.error or "").endswith("returned HTTP 400: answering 400")
    assert len(endpoint.requests) == 1
    with db.session_scope() as session:
        waiting = session.scalar(
            sa.text("SELECT count(*) FROM procrastinate_jobs WHERE status = 'todo'")
        )
    assert waiting == 0, "no retry"


def test_a_batch_keeps_its_completed_document_while_another_waits_for_its_retry(
    httpserver: HTTPServer, storage: Path
) -> None:
    endpoint = Endpoint(httpserver, fails=once_when_asked_for("laptop", 503))
    dataset_id, (first, second) = make_docs(
        storage, ("corpus.md", documents.corpus(4)), ("onboarding.md", documents.MARKDOWN)
    )
    result = document_indexing_task.delay(dataset_id, [first, second])

    drain()

    assert result.status == RETRY
    assert "to be retried" in result.info
    assert document(first).indexing_status is IndexingStatus.COMPLETED
    assert document(second).indexing_status is IndexingStatus.INDEXING
    first_requests = len(endpoint.requests)

    retry_now()
    drain()

    assert result.get() == {first: "completed", second: "completed"}
    assert not any("Paragraph" in " ".join(t) for t in endpoint.requests[first_requests:]), (
        "the completed document was not indexed again"
    )
    assert IndexingStatus.ERROR not in endpoint.statuses


def test_a_retried_batch_still_fails_naming_the_document_that_failed_for_good(
    httpserver: HTTPServer, storage: Path
) -> None:
    Endpoint(httpserver, fails=once_when_asked_for("laptop", 503))
    dataset_id, (broken, second) = make_docs(
        storage, ("broken.pdf", "%PDF-1.4 not really"), ("onboarding.md", documents.MARKDOWN)
    )
    result = document_indexing_task.delay(dataset_id, [broken, second])

    drain()
    assert result.status == RETRY
    assert document(broken).indexing_status is IndexingStatus.ERROR
    retry_now()
    drain()

    assert result.status == FAILURE
    assert f"1 of 2 document(s) failed: {broken}: in error" in result.info
    assert document(second).indexing_status is IndexingStatus.COMPLETED


def once_when_asked_for(word: str, status: int) -> Callable[[list[str]], int | None]:
    """Fail with ``status`` the first request with a text containing ``word``."""
    failed: list[bool] = []

    def fails(texts: list[str]) -> int | None:
        if failed or not any(word in text for text in texts):
            return None
        failed.append(True)
        return status

    return fails


def test_add_to_index_waiting_for_its_retry_leaves_the_document_enabled(
    httpserver: HTTPServer, storage: Path
) -> None:
    endpoint = Endpoint(httpserver)
    dataset_id, (doc_id,) = make_docs(storage, ("corpus.md", documents.corpus(4)))
    run(indexing.index_document, runtime.current().pipeline, doc_id)
    remove_document_from_index_task.delay(doc_id)
    drain()
    assert vectors(dataset_id, doc_id) == 0
    with db.session_scope() as session:
        session.execute(sa.text("DELETE FROM embeddings"))  # the cache would answer otherwise
    endpoint.failures = [503]
    result = add_document_to_index_task.delay(doc_id)

    drain()

    assert result.status == RETRY
    waiting = document(doc_id)
    assert waiting.enabled and waiting.indexing_status is IndexingStatus.COMPLETED
    assert (waiting.error or "").startswith("retrying: ")
    retry_now()
    drain()

    assert result.get() == "completed"
    assert document(doc_id).error is None
    assert vectors(dataset_id, doc_id) == 4
    with db.session_scope() as session:
        assert set(session.scalars(sa.select(DocumentSegment.enabled))) == {True}


def test_a_dataset_rebuild_waiting_for_its_retry_leaves_its_documents_completed(
    httpserver: HTTPServer, storage: Path
) -> None:
    endpoint = Endpoint(httpserver)
    dataset_id, (first, second) = make_docs(
        storage, ("corpus.md", documents.corpus(4)), ("onboarding.md", documents.MARKDOWN)
    )
    run(indexing.index_documents, runtime.current().pipeline, [first, second])
    expected = [vectors(dataset_id, d) for d in (first, second)]
    with db.session_scope() as session:
        session.execute(sa.text("DELETE FROM embeddings"))  # the cache would answer otherwise
    endpoint.fails = once_when_asked_for("laptop", 503)
    result = deal_dataset_vector_index_task.delay(dataset_id, "update")

    drain()

    assert result.status == RETRY
    assert {document(d).indexing_status for d in (first, second)} == {IndexingStatus.COMPLETED}
    assert (document(second).error or "").startswith("retrying: ")
    retry_now()
    drain()

    assert result.get() == {first: "completed", second: "completed"}
    assert [vectors(dataset_id, d) for d in (first, second)] == expected
    assert document(second).error is None


def test_a_notion_outage_during_a_sync_is_retried_from_the_source(
    httpserver: HTTPServer, storage: Path
) -> None:
    endpoint = Endpoint(httpserver)
    httpserver.expect_request("/notion/pages/p1").respond_with_json(
        {"id": "p1", "last_edited_time": "2026-11-02T10:00:00.000Z"}
    )
    httpserver.expect_oneshot_request("/notion/blocks/p1/children").respond_with_json(
        {"message": "upstream down"}, status=502
    )
    text = {"rich_text": [{"plain_text": "Quarterly goals were agreed."}]}
    block = {"type": "paragraph", "has_children": False, "paragraph": text}
    httpserver.expect_request("/notion/blocks/p1/children").respond_with_json(
        {"results": [block], "has_more": False, "next_cursor": None}
    )
    with db.session_scope() as session:
        dataset = factories.make_dataset(session, factories.make_tenant(session))
        doc = factories.make_document(
            session, dataset, data_source_type=DataSourceType.NOTION_IMPORT,
            indexing_status=IndexingStatus.COMPLETED,
            data_source_info={"notion_page_id": "p1", "type": "page",
                              "last_edited_time": "2026-11-01T10:00:00.000Z"},
        )  # fmt: skip
        dataset_id, doc_id = str(dataset.id), str(doc.id)
    result = document_indexing_sync_task.delay(dataset_id, doc_id)

    drain()

    assert result.status == RETRY
    waiting = document(doc_id)
    assert waiting.indexing_status is IndexingStatus.PARSING
    assert (waiting.error or "").startswith("retrying: Notion page p1 returned HTTP 502")
    assert waiting.data_source_info["last_edited_time"].startswith("2026-11-01")  # type: ignore[index]
    retry_now()
    drain()

    assert result.get() == "completed"
    synced = document(doc_id)
    assert synced.indexing_status is IndexingStatus.COMPLETED and synced.error is None
    assert synced.data_source_info["last_edited_time"].startswith("2026-11-02")  # type: ignore[index]
    assert endpoint.requests == [["Quarterly goals were agreed."]]
