"""The indexing pipeline in-process against a real database and real files and servers."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
import sqlalchemy as sa
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tests import documents, factories
from tests.uow import run
from worker import db, runtime
from worker.config import Settings
from worker.domain import index_ops, indexing, notion_sync
from worker.domain.embedding import LocalEmbedder, OpenAIEmbedder
from worker.domain.errors import PermanentError, TransientError
from worker.domain.models import (
    ChildChunk,
    DatasetAutoDisableLog,
    DataSourceType,
    Document,
    DocumentSegment,
    IndexingStatus,
    IndexStructureType,
    IndexTechniqueType,
    ProcessRuleMode,
)
from worker.domain.pipeline import Pipeline
from worker.domain.ports import EmbeddingBatch
from worker.jobs.uow import UnitOfWork


@pytest.fixture
def storage(tmp_path: Path) -> Path:
    return tmp_path / "storage"


@pytest.fixture
def settings(storage: Path) -> Settings:
    return Settings(storage_local_path=storage, indexing_batch_size=2)


@pytest.fixture(autouse=True)
def task_layer(database_url: str, settings: Settings) -> Iterator[runtime.Runtime]:
    yield runtime.setup(database_url, settings=settings)
    runtime.teardown()


@pytest.fixture
def pipeline() -> Pipeline:
    return runtime.current().pipeline


def make_doc(
    storage: Path, text: str, *, name: str = "notes.md", **dataset_overrides: object
) -> tuple[str, str]:
    with db.session_scope() as session:
        tenant = factories.make_tenant(session)
        dataset = factories.make_dataset(session, tenant, **dataset_overrides)
        doc = factories.make_upload_document(session, dataset, storage, name, text.encode())
        return str(dataset.id), str(doc.id)


def document(document_id: str) -> Document:
    with db.session_scope() as session:
        row = session.get(Document, document_id)
        assert row is not None
        return row


def counts(pipeline: Pipeline, dataset_id: str, document_id: str) -> tuple[int, int, int]:
    """(segments, completed segments, vectors) of a document."""
    with db.session_scope() as session:
        segments = session.scalar(
            sa.select(sa.func.count()).where(DocumentSegment.document_id == document_id)
        )
        completed = session.scalar(
            sa.select(sa.func.count()).where(
                DocumentSegment.document_id == document_id, DocumentSegment.status == "completed"
            )
        )
        collection = pipeline.vectors.collection_name(dataset_id)
        vectors = pipeline.vectors.count(session, collection, document_id=document_id)
    return int(segments or 0), int(completed or 0), vectors


class PausingEmbedder:
    """Embeds like the local embedder, and pauses the document after ``after`` batches."""

    def __init__(self, document_id: str, after: int) -> None:
        self.inner = LocalEmbedder(64)
        self.provider, self.model = self.inner.provider, self.inner.model
        self.document_id, self.after, self.calls = document_id, after, 0

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    def embed(self, texts: Sequence[str]) -> EmbeddingBatch:
        self.calls += 1
        if self.calls == self.after:
            with db.session_scope() as session:
                session.execute(
                    sa.update(Document)
                    .where(Document.id == self.document_id)
                    .values(is_paused=True)
                )
        return self.inner.embed(texts)


def test_pause_stops_before_the_next_batch_and_recover_finishes_without_duplicates(
    storage: Path, pipeline: Pipeline
) -> None:
    dataset_id, doc_id = make_doc(storage, documents.corpus(300))
    pausing = dataclasses.replace(pipeline, embedder=PausingEmbedder(doc_id, after=2))

    assert run(indexing.index_document, pausing, doc_id) == "paused"
    segments, completed, vectors = counts(pipeline, dataset_id, doc_id)
    assert document(doc_id).indexing_status is IndexingStatus.INDEXING
    assert 0 < completed < segments and vectors == completed

    with db.session_scope() as session:
        session.execute(sa.update(Document).where(Document.id == doc_id).values(is_paused=False))
    assert run(indexing.index_document, pipeline, doc_id) == "completed"

    assert counts(pipeline, dataset_id, doc_id) == (segments, segments, segments)


def test_failing_embedding_endpoint_ends_in_error_then_retry_completes(
    httpserver: HTTPServer, storage: Path, pipeline: Pipeline
) -> None:
    httpserver.expect_request("/v1/embeddings").respond_with_json(
        {"error": {"message": "model overloaded"}}, status=503
    )
    dataset_id, doc_id = make_doc(storage, documents.corpus(60))
    endpoint = OpenAIEmbedder(httpserver.url_for("/v1"), "key", "text-embedding-3-small")
    failing = dataclasses.replace(pipeline, embedder=endpoint)

    with pytest.raises(TransientError):
        run(indexing.index_document, failing, doc_id)

    failed = document(doc_id)
    assert failed.indexing_status is IndexingStatus.ERROR
    assert failed.error is not None and "503" in failed.error
    assert failed.stopped_at is not None
    assert counts(pipeline, dataset_id, doc_id)[2] == 0, "no vector written"

    assert run(indexing.index_documents, pipeline, [doc_id], restart=True) == {doc_id: "completed"}
    segments, completed, vectors = counts(pipeline, dataset_id, doc_id)
    assert segments == completed == vectors > 0
    assert document(doc_id).error is None


def test_running_twice_never_duplicates_segments_or_vectors(
    storage: Path, pipeline: Pipeline
) -> None:
    dataset_id, doc_id = make_doc(storage, documents.corpus(100))

    run(indexing.index_document, pipeline, doc_id)
    first = counts(pipeline, dataset_id, doc_id)
    run(indexing.index_document, pipeline, doc_id, restart=True)

    assert counts(pipeline, dataset_id, doc_id) == first


def test_unreadable_file_ends_in_error_with_its_name(storage: Path, pipeline: Pipeline) -> None:
    dataset_id, doc_id = make_doc(storage, "%PDF-1.4 not really", name="broken.pdf")

    with pytest.raises(PermanentError):
        run(indexing.index_document, pipeline, doc_id)

    failed = document(doc_id)
    assert failed.indexing_status is IndexingStatus.ERROR
    assert "broken.pdf" in (failed.error or "")
    assert counts(pipeline, dataset_id, doc_id) == (0, 0, 0)


def test_missing_document_is_a_logged_no_op(pipeline: Pipeline) -> None:
    assert run(indexing.index_document, pipeline, "00000000-0000-4000-8000-00000000abcd") is None


def test_economy_dataset_gets_a_keyword_index_that_finds_chinese(
    storage: Path, pipeline: Pipeline
) -> None:
    text = "今天的天气很好。我们去公园散步。\n\n数据库索引可以加快查询速度。尤其是在大表上。"
    dataset_id, doc_id = make_doc(storage, text, indexing_technique=IndexTechniqueType.ECONOMY)

    assert run(indexing.index_document, pipeline, doc_id) == "completed"

    with db.session_scope() as session:
        hits = pipeline.keywords.search(session, dataset_id, "数据库查询", top_k=2)
    assert hits and "数据库" in hits[0].content
    assert counts(pipeline, dataset_id, doc_id)[2] == 0, "economy datasets get no vectors"


def test_parent_child_documents_index_their_child_chunks(storage: Path, pipeline: Pipeline) -> None:
    with db.session_scope() as session:
        tenant = factories.make_tenant(session)
        dataset = factories.make_dataset(session, tenant)
        rule = factories.make_rule(
            session,
            dataset,
            ProcessRuleMode.HIERARCHICAL,
            {
                "pre_processing_rules": [],
                "segmentation": {"separator": "\\n\\n", "max_tokens": 200},
                "parent_mode": "paragraph",
                "subchunk_segmentation": {"separator": "\\n", "max_tokens": 60},
            },
        )
        text = documents.MARKDOWN
        doc = factories.make_upload_document(
            session, dataset, storage, "onboarding.md", text.encode(),
            doc_form=IndexStructureType.PARENT_CHILD_INDEX, dataset_process_rule_id=rule.id,
        )  # fmt: skip
        dataset_id, doc_id = str(dataset.id), str(doc.id)

    assert run(indexing.index_document, pipeline, doc_id) == "completed"

    with db.session_scope() as session:
        children = session.scalar(
            sa.select(sa.func.count()).where(ChildChunk.document_id == doc_id)
        )
        collection = pipeline.vectors.collection_name(dataset_id)
        vectors = pipeline.vectors.count(session, collection, document_id=doc_id)
        query = pipeline.embedder.embed(["Travel expenses are reimbursed"]).vectors[0]
        hits = pipeline.vectors.search(session, collection, query, top_k=1)
    assert children and vectors == children
    assert "reimbursed" in hits[0].content
    assert hits[0].metadata["parent_id"]


def notion_server(httpserver: HTTPServer, edited: str, text: str) -> list[str]:
    calls: list[str] = []

    def page(request: Request) -> Response:
        calls.append("page")
        return Response(json.dumps({"id": "p1", "last_edited_time": edited}), 200,
                        content_type="application/json")  # fmt: skip

    def blocks(request: Request) -> Response:
        calls.append("blocks")
        block = {"type": "paragraph", "has_children": False,
                 "paragraph": {"rich_text": [{"plain_text": text}]}}  # fmt: skip
        return Response(json.dumps({"results": [block], "has_more": False, "next_cursor": None}),
                        200, content_type="application/json")  # fmt: skip

    httpserver.expect_request("/v1/pages/p1").respond_with_handler(page)
    httpserver.expect_request("/v1/blocks/p1/children").respond_with_handler(blocks)
    return calls


def test_notion_sync_reindexes_a_changed_page_and_skips_an_unchanged_one(
    httpserver: HTTPServer, database_url: str, storage: Path
) -> None:
    runtime.setup(database_url, settings=Settings(
        storage_local_path=storage,
        notion_integration_token="secret",
        notion_api_base_url=httpserver.url_for("/v1"),
    ))  # fmt: skip
    pipeline = runtime.current().pipeline
    calls = notion_server(httpserver, "2026-11-02T10:00:00.000Z", "Quarterly goals were agreed.")
    with db.session_scope() as session:
        tenant = factories.make_tenant(session)
        dataset = factories.make_dataset(session, tenant)
        doc = factories.make_document(
            session, dataset, data_source_type=DataSourceType.NOTION_IMPORT,
            data_source_info={"notion_page_id": "p1", "type": "page",
                              "last_edited_time": "2026-11-01T10:00:00.000Z"},
        )  # fmt: skip
        doc_id = str(doc.id)

    assert run(notion_sync.sync_notion_document, pipeline, doc_id) == "completed"
    synced = document(doc_id)
    assert synced.data_source_info is not None
    assert synced.data_source_info["last_edited_time"] == "2026-11-02T10:00:00.000Z"
    with db.session_scope() as session:
        contents = list(session.scalars(sa.select(DocumentSegment.content)))
    assert contents == ["Quarterly goals were agreed."]

    calls.clear()
    assert run(notion_sync.sync_notion_document, pipeline, doc_id) == "completed"
    assert calls == ["page"], "unchanged page: no content fetched, nothing re-indexed"


def test_website_document_is_fetched_and_indexed(
    httpserver: HTTPServer, storage: Path, pipeline: Pipeline
) -> None:
    httpserver.expect_request("/about").respond_with_data(
        "<html><body><nav>menu</nav><main><p>Our bakery opens at dawn.</p></main></body></html>",
        content_type="text/html",
    )
    with db.session_scope() as session:
        tenant = factories.make_tenant(session)
        dataset = factories.make_dataset(session, tenant)
        doc = factories.make_document(
            session, dataset, data_source_type=DataSourceType.WEBSITE_CRAWL,
            data_source_info={"url": httpserver.url_for("/about"), "only_main_content": True},
        )  # fmt: skip
        doc_id = str(doc.id)

    assert run(indexing.index_document, pipeline, doc_id, restart=True) == "completed"

    with db.session_scope() as session:
        contents = list(session.scalars(sa.select(DocumentSegment.content)))
    assert contents == ["Our bakery opens at dawn."]


def test_remove_then_add_document_to_index(storage: Path, pipeline: Pipeline) -> None:
    dataset_id, doc_id = make_doc(storage, documents.corpus(100))
    run(indexing.index_document, pipeline, doc_id)
    segments = counts(pipeline, dataset_id, doc_id)[0]
    with db.session_scope() as session:
        session.add(
            DatasetAutoDisableLog(
                tenant_id=document(doc_id).tenant_id, dataset_id=dataset_id, document_id=doc_id
            )
        )

    assert run(index_ops.remove_document_from_index, pipeline, doc_id) == "removed"
    assert counts(pipeline, dataset_id, doc_id)[2] == 0
    with db.session_scope() as session:
        enabled = set(session.scalars(sa.select(DocumentSegment.enabled)))
    assert enabled == {False}

    assert run(index_ops.add_document_to_index, pipeline, doc_id) == "completed"
    assert counts(pipeline, dataset_id, doc_id) == (segments, segments, segments)
    with db.session_scope() as session:
        assert set(session.scalars(sa.select(DocumentSegment.enabled))) == {True}
        assert session.scalar(sa.select(sa.func.count()).select_from(DatasetAutoDisableLog)) == 0


def test_dataset_vector_index_update_remove_add(storage: Path, pipeline: Pipeline) -> None:
    dataset_id, doc_id = make_doc(storage, documents.corpus(60))
    run(indexing.index_document, pipeline, doc_id)
    segments = counts(pipeline, dataset_id, doc_id)[0]

    assert run(index_ops.deal_dataset_vector_index, pipeline, dataset_id, "update") == {
        doc_id: "completed"
    }
    assert counts(pipeline, dataset_id, doc_id)[2] == segments
    assert run(index_ops.deal_dataset_vector_index, pipeline, dataset_id, "remove") == {}
    assert counts(pipeline, dataset_id, doc_id)[2] == 0
    run(index_ops.deal_dataset_vector_index, pipeline, dataset_id, "add")
    assert counts(pipeline, dataset_id, doc_id)[2] == segments
    assert document(doc_id).indexing_status is IndexingStatus.COMPLETED
    with pytest.raises(PermanentError, match="action 'explode' is not one of"):
        run(index_ops.deal_dataset_vector_index, pipeline, dataset_id, "explode")


class Crash(BaseException):
    """A worker dying mid-step (not an Exception: nothing may catch it)."""


class CrashingEmbedder(PausingEmbedder):
    def embed(self, texts: Sequence[str]) -> EmbeddingBatch:
        raise Crash("worker killed")


def two_documents(storage: Path, second: str, second_name: str) -> tuple[str, str, str]:
    with db.session_scope() as session:
        dataset = factories.make_dataset(session, factories.make_tenant(session))
        first = factories.make_upload_document(
            session, dataset, storage, "a.md", documents.corpus(20).encode(), position=1
        )
        other = factories.make_upload_document(
            session, dataset, storage, second_name, second.encode(), position=2
        )
        return str(dataset.id), str(first.id), str(other.id)


def test_a_failing_document_does_not_undo_another_documents_completion(
    storage: Path, pipeline: Pipeline
) -> None:
    _, good, bad = two_documents(storage, "%PDF-1.4 bad", "broken.pdf")

    with pytest.raises(PermanentError), UnitOfWork() as uow:  # as a job runs it
        indexing.index_documents(uow, pipeline, [good, bad])

    assert document(good).indexing_status is IndexingStatus.COMPLETED
    assert document(bad).indexing_status is IndexingStatus.ERROR


def test_a_crashed_dataset_rebuild_is_finished_by_its_rerun(
    storage: Path, pipeline: Pipeline
) -> None:
    dataset_id, first, second = two_documents(storage, documents.corpus(20), "b.md")
    run(indexing.index_documents, pipeline, [first, second])
    expected = [counts(pipeline, dataset_id, d)[2] for d in (first, second)]
    crashing = dataclasses.replace(pipeline, embedder=CrashingEmbedder(first, after=0))

    with pytest.raises(Crash):
        run(index_ops.deal_dataset_vector_index, crashing, dataset_id, "update")
    run(index_ops.deal_dataset_vector_index, pipeline, dataset_id, "update")  # redelivered

    assert [counts(pipeline, dataset_id, d)[2] for d in (first, second)] == expected
    assert {document(d).indexing_status for d in (first, second)} == {IndexingStatus.COMPLETED}


def test_a_failed_notion_sync_is_done_again_by_the_next_one(
    httpserver: HTTPServer, database_url: str, storage: Path
) -> None:
    runtime.setup(database_url, settings=Settings(
        storage_local_path=storage, notion_integration_token="secret",
        notion_api_base_url=httpserver.url_for("/v1"),
    ))  # fmt: skip
    pipeline = runtime.current().pipeline
    httpserver.expect_request("/v1/pages/p1").respond_with_json(
        {"id": "p1", "last_edited_time": "2026-11-02T10:00:00.000Z"}
    )
    httpserver.expect_oneshot_request("/v1/blocks/p1/children").respond_with_json(
        {"message": "upstream down"}, status=502
    )
    with db.session_scope() as session:
        dataset = factories.make_dataset(session, factories.make_tenant(session))
        doc = factories.make_document(
            session, dataset, data_source_type=DataSourceType.NOTION_IMPORT,
            data_source_info={"notion_page_id": "p1", "type": "page",
                              "last_edited_time": "2026-11-01T10:00:00.000Z"},
        )  # fmt: skip
        doc_id = str(doc.id)

    with pytest.raises(TransientError):
        run(notion_sync.sync_notion_document, pipeline, doc_id)
    assert document(doc_id).indexing_status is IndexingStatus.ERROR
    assert document(doc_id).data_source_info["last_edited_time"].startswith("2026-11-01")  # type: ignore[index]

    notion_server(httpserver, "2026-11-02T10:00:00.000Z", "Back online.")
    assert run(notion_sync.sync_notion_document, pipeline, doc_id) == "completed"
    assert document(doc_id).data_source_info["last_edited_time"].startswith("2026-11-02")  # type: ignore[index]
