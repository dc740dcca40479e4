"""Segment tasks through real ``manage.py worker`` processes: a CSV import SIGKILLed mid-job
ends with one set of segments, and toggles and deletions follow the rows."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tests import factories
from tests import segments as seg
from tests.acceptance.workers import WorkerProcess, wait_until
from worker import db, runtime
from worker.config import Settings
from worker.domain import job_status
from worker.domain.embedding import LocalEmbedder
from worker.domain.models import DocumentSegment, IndexStructureType, JobKind
from worker.tasks import (
    batch_create_segment_to_index_task,
    delete_segment_from_index_task,
    disable_segment_from_index_task,
    enable_segments_to_index_task,
)

pytestmark = pytest.mark.slow

KIND = JobKind.SEGMENT_BATCH_IMPORT


@pytest.fixture(autouse=True)
def task_layer(database_url: str, tmp_path: Path) -> Iterator[None]:
    runtime.setup(database_url, settings=Settings(storage_local_path=tmp_path / "storage"))
    yield
    runtime.teardown()


def slow_embeddings(httpserver: HTTPServer, delay: float) -> None:
    embedder = LocalEmbedder(64)

    def handle(request: Request) -> Response:
        time.sleep(delay)
        texts = request.get_json()["input"]
        vectors = embedder.embed(texts).vectors
        body = {"data": [{"index": i, "embedding": v} for i, v in enumerate(vectors)],
                "usage": {"total_tokens": len(texts)}}  # fmt: skip
        return Response(json.dumps(body), 200, content_type="application/json")

    httpserver.expect_request("/v1/embeddings", method="POST").respond_with_handler(handle)


def defer_import(doc: seg.Doc, job_id: str) -> None:
    with db.session_scope() as session:
        job_status.defer(
            session, KIND, batch_create_segment_to_index_task,
            job_id=job_id, content=seg.rows(doc.form), dataset_id=doc.dataset_id,
            document_id=doc.document_id, tenant_id=doc.tenant_id, user_id=str(factories.USER),
        )  # fmt: skip


def status(job_id: str) -> str:
    with db.session_scope() as session:
        return job_status.read(session, KIND, job_id)["job_status"]


def completed(docs: list[seg.Doc]) -> int:
    with db.session_scope() as session:
        return int(
            session.scalar(
                sa.select(sa.func.count()).where(
                    DocumentSegment.document_id.in_([uuid.UUID(d.document_id) for d in docs]),
                    DocumentSegment.status == "completed",
                )
            )
            or 0
        )


def test_an_import_killed_mid_job_and_run_again_ends_with_three_segments(
    httpserver: HTTPServer, database_url: str, tmp_path: Path, workers: list[WorkerProcess]
) -> None:
    slow_embeddings(httpserver, delay=0.6)
    env = {
        "STORAGE_LOCAL_PATH": str(tmp_path / "storage"),
        "WORKER_EMBEDDING_PROVIDER": "openai",
        "WORKER_EMBEDDING_BASE_URL": httpserver.url_for("/v1"),
        "WORKER_EMBEDDING_MODEL": "slow-test",
        "WORKER_INDEXING_BATCH_SIZE": "1",
    }
    docs = [seg.make_completed_document(form) for form in seg.FORMS]
    jobs = [str(uuid.uuid4()) for _ in docs]
    for doc, job_id in zip(docs, jobs, strict=True):
        defer_import(doc, job_id)

    workers.append(first := WorkerProcess(database_url, "--queues", "dataset", env=env))
    wait_until(lambda: completed(docs) >= 1, timeout=60, message="no segment indexed")
    first.kill()
    assert completed(docs) < 9, "killed before the end"
    workers.append(second := WorkerProcess(database_url, "--queues", "dataset", env=env))
    for job_id in jobs:
        wait_until(lambda j=job_id: status(j) == "completed", timeout=90, message=job_id)
    for doc, job_id in zip(docs, jobs, strict=True):  # the same jobs, delivered again
        defer_import(doc, job_id)
    wait_until(lambda: all(status(j) == "completed" for j in jobs), timeout=60)
    wait_until(lambda: "segments.batch_create_segment_to_index" not in _open_jobs(), timeout=60)
    assert second.stop() == 0

    for doc in docs:
        rows = seg.segment_rows(doc.document_id)
        assert [r.position for r in rows] == [1, 2, 3], doc.form
        assert {r.status.value for r in rows} == {"completed"}
        per_parent = set(seg.vectors_of(doc).values())
        assert per_parent == {str(r.index_node_id) for r in rows}, doc.form
        expected = 6 if doc.form is IndexStructureType.PARENT_CHILD_INDEX else 3
        assert len(seg.vectors_of(doc)) == expected


def _open_jobs() -> str:
    with db.session_scope() as session:
        names = session.scalars(
            sa.text("SELECT task_name FROM procrastinate_jobs WHERE status IN ('todo', 'doing')")
        )
        return " ".join(names)


def test_toggles_and_deletion_through_a_worker(
    database_url: str, tmp_path: Path, workers: list[WorkerProcess]
) -> None:
    env = {"STORAGE_LOCAL_PATH": str(tmp_path / "storage")}
    workers.append(worker := WorkerProcess(database_url, "--queues", "dataset", env=env))
    docs = {form: seg.make_completed_document(form) for form in seg.FORMS}
    for doc in docs.values():
        job_id = str(uuid.uuid4())
        defer_import(doc, job_id)
        wait_until(lambda j=job_id: status(j) == "completed", timeout=60)

    for form, doc in docs.items():
        rows = seg.segment_rows(doc.document_id)
        before = seg.vectors_of(doc)
        # disabled, then re-enabled before its job runs: keeps its vectors
        seg.set_enabled(rows[0].id, False)
        seg.set_enabled(rows[0].id, True)
        assert (
            disable_segment_from_index_task.delay(str(rows[0].id))
            .get(timeout=30)
            .startswith("skipped")
        )
        assert seg.vectors_of(doc) == before, form
        # disabled for real: its vectors and keyword row go, the others stay
        seg.set_enabled(rows[1].id, False)
        assert disable_segment_from_index_task.delay(str(rows[1].id)).get(timeout=30) == "disabled"
        left = seg.vectors_of(doc)
        assert str(rows[1].index_node_id) not in left.values(), form
        assert str(rows[1].index_node_id) not in seg.keyword_nodes(doc)
        # enabled again through the console's batch toggle
        seg.set_enabled(rows[1].id, True)
        enabled = enable_segments_to_index_task.delay(
            [str(rows[1].id)], doc.dataset_id, doc.document_id
        ).get(timeout=30)
        assert enabled == {str(rows[1].id): "enabled"}
        assert seg.vectors_of(doc) == before, form
        # deleted: the caller deletes the row and defers in one transaction (1.7.0 arguments)
        with db.session_scope() as session:
            session.execute(sa.delete(DocumentSegment).where(DocumentSegment.id == rows[2].id))
            result = delete_segment_from_index_task.apply_async(
                args=[[str(rows[2].index_node_id)], doc.dataset_id, doc.document_id],
                session=session,
            )
        assert result.get(timeout=30).startswith("deleted")
        remaining = seg.vectors_of(doc)
        assert str(rows[2].index_node_id) not in remaining.values(), "no child vector left"
        assert {n: p for n, p in before.items() if p != str(rows[2].index_node_id)} == remaining
    assert worker.stop() == 0
