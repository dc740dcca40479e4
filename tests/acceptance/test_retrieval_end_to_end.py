"""As an app would do it: set up from the environment, upload files through the API, create
their documents and defer their indexing in one transaction, let a real worker index them, then
search (semantic, full text, hybrid) and re-index without losing the token counts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests import documents, factories
from tests.acceptance.workers import WorkerProcess
from worker import api, db, runtime
from worker.domain.models import Document, ProcessRuleMode
from worker.tasks import document_indexing_task, document_indexing_update_task

pytestmark = pytest.mark.slow

FAQ = """Passwords are reset from the sign-in page with a code sent by mail.

Invoices are issued on the first day of every month in euros.

The mobile app works offline and syncs when the network returns."""
#: One paragraph, one segment.
PARAGRAPHS = {"segmentation": {"separator": "\\n\\n", "max_tokens": 100}}
REFUNDS = "退款将在七个工作日内退回原支付账户。\n\n发票在每月第一天开具。"


@pytest.fixture
def environment(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, str]]:
    """The settings app and worker share, in the environment only (as in a deployment)."""
    env = {
        "DATABASE_URL": database_url,
        "STORAGE_LOCAL_PATH": str(tmp_path / "uploads"),
        "WORKER_EMBEDDING_DIMENSION": "128",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    yield env
    runtime.teardown()


def test_upload_index_search_and_reindex_as_an_app(environment: dict[str, str]) -> None:
    current = runtime.setup()  # no URL, no settings: the environment's, as the worker's

    assert current.settings.storage_root == Path(environment["STORAGE_LOCAL_PATH"])
    assert current.pipeline.embedder.dimension == 128
    with db.session_scope() as session:
        tenant = factories.make_tenant(session)
        dataset = factories.make_dataset(session, tenant, embedding_model="hashing-128")
        rule = factories.make_rule(session, dataset, ProcessRuleMode.CUSTOM, PARAGRAPHS)
        ids = {}
        for name, data in (
            ("faq.md", FAQ.encode()),
            ("lighthouse.pdf", documents.make_pdf()),
            ("refunds.txt", REFUNDS.encode()),
        ):
            upload = api.upload_file(
                tenant_id=tenant.id, created_by=factories.USER, name=name, data=data
            )
            document = api.create_document(
                dataset_id=dataset.id, upload=upload, created_by=factories.USER,
                process_rule_id=rule.id,
            )  # fmt: skip
            ids[name] = str(document.id)
        dataset_id = str(dataset.id)
        indexed = document_indexing_task.delay(dataset_id, list(ids.values()))
    worker = WorkerProcess(environment["DATABASE_URL"], env=environment)
    try:
        assert indexed.get(timeout=60) == dict.fromkeys(ids.values(), "completed")
        before = _tokens(ids)
        hits = {
            method: api.search(dataset_id, query, search_method=method, top_k=3)
            for method, query in (
                ("semantic_search", "when are invoices issued every month"),
                ("full_text_search", "invoices"),
                ("hybrid_search", "invoices issued in euros"),
            )
        }
        lighthouse = api.search(dataset_id, "storm recorded by the lighthouse keeper")
        chinese = api.search(dataset_id, "退款", search_method="full_text_search")
        reindexed = [
            document_indexing_update_task.delay(dataset_id, document_id)
            for document_id in ids.values()
        ]
        assert [r.get(timeout=60) for r in reindexed] == ["completed"] * len(ids)
        after = _tokens(ids)
        started = next(line for line in worker.output().splitlines() if "worker started" in line)
    finally:
        worker.close()

    for method, found in hits.items():
        assert found[0].document_id == ids["faq.md"], method
        assert found[0].content.startswith("Invoices are issued"), method
        assert found[0].position == 2, method
    assert lighthouse[0].document_id == ids["lighthouse.pdf"]
    assert "lighthouse keeper recorded the storm" in lighthouse[0].content
    assert chinese[0].document_id == ids["refunds.txt"]
    assert all(count > 0 for count in before.values())
    assert after == before
    assert current.database in started


def _tokens(ids: dict[str, str]) -> dict[str, int | None]:
    with db.session_scope() as session:
        rows = session.execute(
            sa.select(Document.id, Document.tokens).where(Document.id.in_(list(ids.values())))
        )
        return {str(document_id): tokens for document_id, tokens in rows}
