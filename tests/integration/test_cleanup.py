"""Deleting documents and datasets through the services, cleaned by the real job loop
in-process: nothing left behind, and nothing touched for a deletion that rolled back."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests import cleanup_scenario as scenario
from tests import segments as seg
from tests.inprocess import drain
from tests.uow import run
from worker import db, queues, runtime
from worker.config import Settings
from worker.domain.cleanup import deletion, purge
from worker.domain.models import Document, IndexStructureType
from worker.domain.storage import LocalStorage
from worker.tasks import cleanup
from worker.tasks.cleanup import clean_dataset_task, clean_notion_document_task


@pytest.fixture
def storage(tmp_path: Path) -> Path:
    return tmp_path / "storage"


@pytest.fixture(autouse=True)
def task_layer(database_url: str, storage: Path) -> Iterator[runtime.Runtime]:
    settings = Settings(storage_local_path=storage, indexing_batch_size=2)
    yield runtime.setup(database_url, settings=settings)
    runtime.teardown()


def blobs(storage: Path, keys: object) -> list[str]:
    local = LocalStorage(storage)
    return [k for k in keys if local.exists(k)]  # type: ignore[attr-defined]


def test_image_links_are_found_as_dify_finds_them() -> None:
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    text = (
        f"![image](https://x.example/files/{a}/file-preview?t=1) and "
        f"![image](http://x.example/console/api/files/{b}/image-preview) "
        f"![image](https://x.example/files/{a}/file-preview) ![chart](https://x/files/{b}/x)"
    )
    assert deletion.image_file_ids([text]) == [a, b]


def test_a_deleted_dataset_leaves_no_row_vector_keyword_or_file(storage: Path) -> None:
    built = scenario.build(storage)
    other = seg.make_completed_document(IndexStructureType.PARAGRAPH_INDEX)
    before = scenario.counts(built.dataset_id)
    assert before["embedding_vectors"] == 3 + 3 + 6 and before["keyword_index"] == 9
    with db.session_scope() as session:
        tables = scenario.dataset_tables(session)
    assert {"dataset_metadata_bindings", "dataset_queries", "app_dataset_joins"} <= set(tables)
    assert all(before[t] > 0 for t in tables), before
    assert len(blobs(storage, built.files.values())) == 3 + 1  # the sources and the image

    with db.session_scope() as session:
        assert cleanup.delete_dataset(session, built.dataset_id)
    drain([queues.DATASET])

    assert set(scenario.counts(built.dataset_id).values()) == {0}
    assert scenario.upload_rows(list(built.files)) == 0
    assert blobs(storage, built.files.values()) == []
    assert scenario.counts(other.dataset_id)["documents"] == 1, "another dataset is untouched"
    assert scenario.upload_rows([_source_of(other)]) == 1


def _source_of(doc: seg.Doc) -> str:
    with db.session_scope() as session:
        found = session.get(Document, uuid.UUID(doc.document_id))
        assert found is not None and found.data_source_info is not None
        return str(found.data_source_info["upload_file_id"])


def test_a_cleanup_of_a_live_dataset_touches_nothing(storage: Path) -> None:
    built = scenario.build(storage)
    before = scenario.counts(built.dataset_id)
    with db.session_scope() as session:  # the app's deletion rolled back
        assert cleanup.delete_dataset(session, built.dataset_id)
        session.rollback()
    with pytest.raises(purge.StillExists, match="still exists"):
        run(purge.clean_dataset, runtime.current().pipeline, built.dataset_id,
            list(built.files))  # fmt: skip
    assert scenario.counts(built.dataset_id) == before
    assert scenario.upload_rows(list(built.files)) == len(built.files)
    assert len(blobs(storage, built.files.values())) == len(built.files)
    with db.session_scope() as session:
        count = "SELECT count(*) FROM procrastinate_jobs WHERE task_name = :name"
        jobs = session.scalar(sa.text(count), {"name": clean_dataset_task.name})
    assert jobs == 0, "the rolled-back deletion deferred nothing"


def test_deleting_documents_cleans_only_them(storage: Path) -> None:
    built = scenario.build(storage)
    paragraph, qa, parent_child = built.documents
    sources = {d.document_id: _source_of(d) for d in built.documents}
    with db.session_scope() as session:
        assert cleanup.delete_document(session, paragraph.document_id)
        deleted = cleanup.delete_documents(
            session, built.dataset_id, [parent_child.document_id, str(uuid.uuid4())]
        )
        assert deleted == [parent_child.document_id]
    drain([queues.DATASET])

    for gone in (paragraph, parent_child):
        left = scenario.counts(built.dataset_id, gone.document_id)
        assert left.pop("datasets") == 1 and set(left.values()) == {0}, left
        assert scenario.upload_rows([sources[gone.document_id]]) == 0
    kept = scenario.counts(built.dataset_id, qa.document_id)
    assert kept["embedding_vectors"] == 3 and kept["keyword_index"] == 3
    assert scenario.upload_rows([sources[qa.document_id]]) == 1
    image = [f for f in built.files if f not in sources.values()]
    assert scenario.upload_rows(image) == 0, "the image linked from the paragraph document"
    assert blobs(storage, [built.files[f] for f in image]) == []


def test_notion_cleanup_deletes_the_documents_and_skips_gone_ones(storage: Path) -> None:
    built = scenario.build(storage)
    qa = built.documents[1]
    clean_notion_document_task.delay([qa.document_id, str(uuid.uuid4())], built.dataset_id)
    drain([queues.DATASET])
    left = scenario.counts(built.dataset_id, qa.document_id)
    assert left.pop("datasets") == 1 and set(left.values()) == {0}, left
    assert scenario.counts(built.dataset_id)["documents"] == 2
