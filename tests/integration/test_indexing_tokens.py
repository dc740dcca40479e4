"""A document's token count survives every path through the embedding cache: re-indexing,
retrying, and the same text indexed in another dataset of another workspace."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import documents, factories
from tests.uow import run
from worker import db, runtime
from worker.config import Settings
from worker.domain import indexing
from worker.domain.models import Document
from worker.tasks import document_indexing_update_task, retry_document_indexing_task


@pytest.fixture(autouse=True)
def task_layer(database_url: str, tmp_path: Path) -> Iterator[runtime.Runtime]:
    settings = Settings(storage_local_path=tmp_path, indexing_batch_size=3)
    yield runtime.setup(database_url, settings=settings)
    runtime.teardown()


def new_document(storage: Path, text: str) -> tuple[str, str]:
    """A document of ``text`` in a dataset of a workspace of its own."""
    with db.session_scope() as session:
        dataset = factories.make_dataset(session, factories.make_tenant(session))
        doc = factories.make_upload_document(session, dataset, storage, "a.md", text.encode())
        return str(dataset.id), str(doc.id)


def tokens(document_id: str) -> int | None:
    with db.session_scope() as session:
        document = session.get(Document, document_id)
        assert document is not None
        return document.tokens


def test_tokens_stay_the_same_when_indexed_again_retried_or_shared(tmp_path: Path) -> None:
    text = documents.corpus(40)
    dataset_id, document_id = new_document(tmp_path, text)
    pipeline = runtime.current().pipeline

    run(indexing.index_document, pipeline, document_id)
    first = tokens(document_id)
    document_indexing_update_task(dataset_id, document_id)  # restart from the source
    after_update = tokens(document_id)
    retry_document_indexing_task(dataset_id, [document_id])  # the seed's two arguments
    after_retry = tokens(document_id)
    _, other_document = new_document(tmp_path, text)
    run(indexing.index_document, pipeline, other_document)

    assert first is not None and first > 0
    assert after_update == after_retry == first
    assert tokens(other_document) == first
