"""The retrieval and upload API in-process, against a real database and real files."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests import documents, factories
from tests.uow import run
from worker import api, db, runtime
from worker.config import Settings
from worker.domain import indexing
from worker.domain.models import (
    DocumentSegment,
    IndexStructureType,
    IndexTechniqueType,
    ProcessRuleMode,
    UploadFile,
)
from worker.domain.retrieval import DatasetNotFound, EmbedderMismatch, InvalidRetrievalModel
from worker.domain.uploads import InvalidUpload

#: One paragraph, one segment.
PARAGRAPHS = {"segmentation": {"separator": "\\n\\n", "max_tokens": 100}}
USER = factories.USER
FAQ = """Passwords are reset from the sign-in page with a code sent by mail.

Invoices are issued on the first day of every month in euros.

The mobile app works offline and syncs when the network returns."""
#: A full-text hit only: no other document shares its rare word.
CHINESE = "退款将在七个工作日内退回原支付账户。"


@pytest.fixture(autouse=True)
def task_layer(database_url: str, tmp_path: Path) -> Iterator[runtime.Runtime]:
    yield runtime.setup(database_url, settings=Settings(storage_local_path=tmp_path / "files"))
    runtime.teardown()


def new_dataset(**overrides: Any) -> tuple[str, str, str]:
    """(tenant id, dataset id, rule id) of a new dataset cut into one segment per paragraph."""
    with db.session_scope() as session:
        tenant = factories.make_tenant(session)
        dataset = factories.make_dataset(session, tenant, **overrides)
        rule = factories.make_rule(session, dataset, ProcessRuleMode.CUSTOM, PARAGRAPHS)
        return str(tenant.id), str(dataset.id), str(rule.id)


def add_document(dataset: tuple[str, str, str], name: str, text: str) -> str:
    """Upload ``text`` through the API, add its document and index it; return its id."""
    tenant_id, dataset_id, rule_id = dataset
    with db.session_scope():
        upload = api.upload_file(
            tenant_id=tenant_id, created_by=USER, name=name, data=text.encode()
        )
        document = api.create_document(
            dataset_id=dataset_id, upload=upload, created_by=USER, process_rule_id=rule_id
        )
        document_id = str(document.id)
    assert run(indexing.index_document, runtime.current().pipeline, document_id) == "completed"
    return document_id


def set_retrieval_model(dataset_id: str, **model: Any) -> None:
    with db.session_scope() as session:
        session.execute(
            sa.text("UPDATE datasets SET retrieval_model = CAST(:m AS json) WHERE id = :id"),
            {"m": json.dumps(model), "id": dataset_id},
        )


@pytest.fixture
def library() -> tuple[tuple[str, str, str], dict[str, str]]:
    dataset = new_dataset()
    ids = {
        "faq": add_document(dataset, "faq.md", FAQ),
        "handbook": add_document(dataset, "handbook.md", documents.MARKDOWN),
        "refunds": add_document(dataset, "refunds.txt", CHINESE),
    }
    return dataset, ids


@pytest.mark.parametrize("method", ["semantic_search", "full_text_search", "hybrid_search"])
def test_each_search_method_finds_the_right_segment_first(
    library: tuple[tuple[str, str, str], dict[str, str]], method: str
) -> None:
    (_, dataset_id, _), ids = library

    query = "reset my password with a code from the sign-in page"
    hits = api.search(dataset_id, query, search_method=method, top_k=3)

    assert hits[0].document_id == ids["faq"]
    assert hits[0].content.startswith("Passwords are reset")
    assert (hits[0].position, hits[0].document_name, hits[0].dataset_id) == (
        1,
        "faq.md",
        dataset_id,
    )
    assert [hit.score for hit in hits] == sorted((hit.score for hit in hits), reverse=True)


def test_full_text_finds_chinese_and_the_dataset_model_is_followed(
    library: tuple[tuple[str, str, str], dict[str, str]],
) -> None:
    (_, dataset_id, _), ids = library
    set_retrieval_model(dataset_id, search_method="full_text_search", top_k=1)

    hits = api.search(dataset_id, "退款")

    assert [hit.document_id for hit in hits] == [ids["refunds"]]


def test_hybrid_weighted_score_blends_both_sides_and_applies_the_threshold(
    library: tuple[tuple[str, str, str], dict[str, str]],
) -> None:
    (_, dataset_id, _), ids = library
    weights = {
        "vector_setting": {"vector_weight": 0.5},
        "keyword_setting": {"keyword_weight": 0.5},
    }
    set_retrieval_model(
        dataset_id, search_method="hybrid_search", reranking_mode="weighted_score",
        weights=weights, top_k=10, score_threshold_enabled=True, score_threshold=0.2,
    )  # fmt: skip

    query = "invoices issued every month"
    hits = api.search(dataset_id, query)
    alone = api.search(dataset_id, query, search_method="semantic_search", score_threshold=-1)
    semantic = {hit.segment_id: hit.score for hit in alone}

    assert hits[0].document_id == ids["faq"] and hits[0].content.startswith("Invoices")
    assert all(hit.score >= 0.2 for hit in hits)
    assert 0 < hits[0].score < semantic[hits[0].segment_id], "half of a similarity below 1"


def test_top_k_is_exact_and_skips_disabled_segments(tmp_path: Path) -> None:
    dataset = new_dataset()
    document_id = add_document(dataset, "corpus.md", documents.corpus(60))
    with db.session_scope() as session:
        segments = session.scalars(
            sa.select(DocumentSegment).where(DocumentSegment.document_id == document_id)
        ).all()
        assert len(segments) == 60
        for segment in segments[:20]:
            segment.enabled = False
        disabled = {str(s.id) for s in segments[:20]}

    semantic = api.search(dataset[1], "river copper lantern", top_k=40)
    everything = api.search(dataset[1], "river copper lantern", top_k=100)
    text = api.search(dataset[1], "paragraph", search_method="full_text_search", top_k=40)

    assert len(semantic) == 40 and len(text) == 40
    assert len(everything) == 40, "all the enabled segments, no more"
    assert not disabled & {hit.segment_id for hit in semantic + text}
    assert len({hit.segment_id for hit in semantic}) == 40


def test_parent_child_hits_are_parent_segments(tmp_path: Path) -> None:
    with db.session_scope() as session:
        dataset = factories.make_dataset(session, factories.make_tenant(session))
        rule = factories.make_rule(
            session, dataset, ProcessRuleMode.HIERARCHICAL,
            {"pre_processing_rules": [], "segmentation": {"separator": "\\n\\n", "max_tokens": 200},
             "parent_mode": "paragraph",
             "subchunk_segmentation": {"separator": "\\n", "max_tokens": 60}},
        )  # fmt: skip
        doc = factories.make_upload_document(
            session, dataset, tmp_path / "files", "onboarding.md", documents.MARKDOWN.encode(),
            doc_form=IndexStructureType.PARENT_CHILD_INDEX, dataset_process_rule_id=rule.id,
        )  # fmt: skip
        dataset_id, document_id = str(dataset.id), str(doc.id)
    run(indexing.index_document, runtime.current().pipeline, document_id)

    hits = api.search(dataset_id, "Travel expenses are reimbursed", top_k=2)

    assert "reimbursed" in hits[0].content
    assert len({hit.segment_id for hit in hits}) == len(hits)


def test_economy_datasets_are_searched_by_keywords() -> None:
    dataset = new_dataset(indexing_technique=IndexTechniqueType.ECONOMY)
    faq = add_document(dataset, "faq.md", FAQ)

    hits = api.search(dataset[1], "offline mobile app", search_method="semantic_search")

    assert hits and hits[0].document_id == faq and "offline" in hits[0].content


def test_a_query_embedded_by_another_model_is_refused_not_silently_empty(
    library: tuple[tuple[str, str, str], dict[str, str]], database_url: str, tmp_path: Path
) -> None:
    (_, dataset_id, _), _ = library
    runtime.setup(database_url, settings=Settings(embedding_dimension=64))

    with pytest.raises(EmbedderMismatch, match="256 dimensions and the query's 64"):
        api.search(dataset_id, "passwords")


def test_bad_requests_are_refused() -> None:
    with pytest.raises(DatasetNotFound):
        api.search(str(uuid.uuid4()), "anything")
    _, dataset_id, _ = new_dataset()
    with pytest.raises(InvalidRetrievalModel, match="top_k 0"):
        api.search(dataset_id, "anything", top_k=0)
    with pytest.raises(InvalidRetrievalModel, match="search method 'vector'"):
        api.search(dataset_id, "anything", search_method="vector")
    assert api.search(dataset_id, "   ", top_k=3) == []
    set_retrieval_model(dataset_id, search_method="semantic_search", top_k="four")
    with pytest.raises(InvalidRetrievalModel, match="top_k must be an integer"):
        api.search(dataset_id, "anything")


def test_an_upload_rolled_back_leaves_no_file_and_a_committed_one_is_readable(
    tmp_path: Path,
) -> None:
    tenant_id, dataset_id, _ = new_dataset()
    storage = runtime.current().pipeline.storage

    with pytest.raises(RuntimeError), db.session_scope():
        lost = api.upload_file(tenant_id=tenant_id, created_by=USER, name="a.txt", data=b"x")
        assert storage.exists(lost.key)
        raise RuntimeError("the request failed")
    with db.session_scope():
        kept = api.upload_file(
            tenant_id=tenant_id, created_by=USER, name="Report.PDF", data=b"%PDF", mime_type="a/b"
        )
        first = api.create_document(dataset_id=dataset_id, upload=kept, created_by=USER)
        second = api.create_document(dataset_id=dataset_id, upload=kept, created_by=USER)

    assert not storage.exists(lost.key)
    assert storage.load(kept.key) == b"%PDF"
    assert kept.key.startswith(f"upload_files/{tenant_id}/") and kept.key.endswith(".pdf")
    assert (kept.extension, kept.size, kept.mime_type) == ("pdf", 4, "a/b")
    assert first.data_source_info == {"upload_file_id": str(kept.id)}
    assert (first.position, second.position, first.name) == (1, 2, "Report.PDF")
    with db.session_scope() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(UploadFile)) == 1


def test_a_file_of_another_workspace_cannot_become_a_document(tmp_path: Path) -> None:
    other_tenant, _, _ = new_dataset()
    _, dataset_id, _ = new_dataset()

    with pytest.raises(InvalidUpload, match="another workspace"), db.session_scope():
        upload = api.upload_file(tenant_id=other_tenant, created_by=USER, name="a.md", data=b"#")
        api.create_document(dataset_id=dataset_id, upload=upload, created_by=USER)
