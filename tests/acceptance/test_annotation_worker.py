"""Annotation replies through real ``manage.py worker`` processes: app code defers the jobs with
their statuses in its own transactions and polls them until they end."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tests import annotations, factories
from tests.acceptance.workers import WorkerProcess, wait_until
from worker import db, runtime
from worker.config import Settings
from worker.domain import job_status
from worker.domain.annotation import store
from worker.domain.embedding import LocalEmbedder
from worker.domain.models import JobKind, MessageAnnotation, Tenant
from worker.tasks import (
    add_annotation_to_index_task,
    batch_import_annotations_task,
    delete_annotation_index_task,
    enable_annotation_reply_task,
)

pytestmark = pytest.mark.slow

ENABLE = JobKind.ANNOTATION_REPLY_ENABLE
IMPORT = JobKind.ANNOTATION_BATCH_IMPORT
USER = str(factories.USER)


@pytest.fixture(autouse=True)
def task_layer(database_url: str, tmp_path: Path) -> Iterator[None]:
    runtime.setup(database_url, settings=Settings(storage_local_path=tmp_path / "storage"))
    yield
    runtime.teardown()


def enable(session: Any, tenant: Tenant, app_id: uuid.UUID, model: str) -> str:
    answer = job_status.defer(
        session, ENABLE, enable_annotation_reply_task,
        job_id=str(uuid.uuid4()), app_id=str(app_id), user_id=USER, tenant_id=str(tenant.id),
        score_threshold=0.8, embedding_provider_name="openai", embedding_model_name=model,
    )  # fmt: skip
    assert answer["job_status"] == "waiting"
    return answer["job_id"]


def batch_import(session: Any, tenant: Tenant, app_id: uuid.UUID, rows: Any, job_id: str) -> None:
    job_status.defer(
        session, IMPORT, batch_import_annotations_task,
        job_id=job_id, content_list=rows, app_id=str(app_id), tenant_id=str(tenant.id),
        user_id=USER,
    )  # fmt: skip


def final(kind: JobKind, job_id: str, timeout: float = 60) -> dict[str, str]:
    """Poll the job's status as the console does, until it ends."""
    answer: dict[str, str] = {}

    def ended() -> bool:
        nonlocal answer
        with db.session_scope() as session:
            answer = job_status.read(session, kind, job_id)
        return answer["job_status"] in ("completed", "error")

    wait_until(ended, timeout=timeout, message=f"{kind} job {job_id} did not end")
    return answer


def test_enable_move_delete_and_import_through_a_worker_process(database_url: str) -> None:
    rows = [{"question": f"Question {i}?", "answer": f"Answer {i}."} for i in range(4)]
    import_job = str(uuid.uuid4())
    with db.session_scope() as session:
        tenant = factories.make_tenant(session)
        app = annotations.make_app(session, tenant)
        other = annotations.make_app(session, tenant, name="Other bot")
        kept = [annotations.make_annotation(session, app, f"Kept {i}?").id for i in range(3)]
        for i in range(2):
            annotations.make_annotation(session, other, f"Other {i}?")
        other_job = enable(session, tenant, other.id, "model-a")
        first_job = enable(session, tenant, app.id, "model-a")
        binding_a = store.get_or_create_binding(session, "openai", "model-a")
        doomed = annotations.make_annotation(session, app, "Deleted before indexing?")
        doomed_add = add_annotation_to_index_task.delay(
            str(doomed.id), "Deleted before indexing?", str(tenant.id), str(app.id),
            str(binding_a.id),
        )  # fmt: skip
        batch_import(session, tenant, app.id, rows, import_job)
        bad_job = str(uuid.uuid4())
        batch_import(session, tenant, app.id, [rows[0], {"question": "No answer?"}], bad_job)
        missing_job = enable(session, tenant, uuid.uuid4(), "model-a")
    with db.session_scope() as session:
        session.execute(sa.delete(MessageAnnotation).where(MessageAnnotation.id == doomed.id))
        delete_annotation_index_task.delay(
            str(doomed.id), str(app.id), str(tenant.id), str(binding_a.id)
        )

    worker = WorkerProcess(database_url, "--queues", "annotation")
    try:
        assert final(ENABLE, other_job)["job_status"] == "completed"
        assert final(ENABLE, first_job)["job_status"] == "completed"
        assert final(IMPORT, import_job)["job_status"] == "completed"
        assert doomed_add.get(timeout=30) == "annotation not found"
        bad = final(IMPORT, bad_job)
        missing = final(ENABLE, missing_job)
        model_a = annotations.binding("model-a")
        other_vectors = annotations.vectors(model_a.collection, other.id)
        in_a = set(annotations.vectors(model_a.collection, app.id))

        with db.session_scope() as session:  # the same import job, delivered again
            batch_import(session, tenant, app.id, rows, import_job)
            move_job = enable(session, tenant, app.id, "model-b")
        assert final(IMPORT, import_job)["job_status"] == "completed"
        assert final(ENABLE, move_job)["job_status"] == "completed"
    finally:
        assert worker.stop() == 0
        worker.close()

    assert bad["job_status"] == "error"
    assert "row 2 (content_list[1]): 'answer' is missing" in bad["error_msg"]
    assert missing["job_status"] == "error" and "App not found" in missing["error_msg"]
    assert annotations.annotation_count(app.id) == 3 + 4, "no duplicate, nothing of the bad import"
    assert str(doomed.id) not in in_a, "added after its deletion: no vector"
    assert {str(i) for i in kept} <= in_a and len(in_a) == 3 + 4
    model_b = annotations.binding("model-b")
    assert annotations.annotation_vectors(app.id) == {model_b.collection: in_a}
    assert annotations.setting_of(app.id) == (model_b.id, 0.8)
    assert len(other_vectors) == 2
    assert annotations.vectors(model_a.collection, other.id) == other_vectors


def embeddings_endpoint(httpserver: HTTPServer, *, first: int = 200, delay: float = 0.0) -> None:
    """An OpenAI-compatible endpoint: the first request answers ``first``, each takes ``delay``."""
    local = LocalEmbedder(32)
    calls = iter(range(1_000_000))
    lock = threading.Lock()

    def handle(request: Request) -> Response:
        with lock:
            call = next(calls)
        time.sleep(delay)
        if call == 0 and first != 200:
            return Response(json.dumps({"error": {"message": "overloaded"}}), first)
        vectors = local.embed(request.get_json()["input"]).vectors
        body = {"data": [{"index": i, "embedding": v} for i, v in enumerate(vectors)]}
        return Response(json.dumps(body), 200, content_type="application/json")

    httpserver.expect_request("/v1/embeddings", method="POST").respond_with_handler(handle)


def openai_env(httpserver: HTTPServer, **extra: str) -> dict[str, str]:
    return {
        "WORKER_EMBEDDING_PROVIDER": "openai",
        "WORKER_EMBEDDING_BASE_URL": httpserver.url_for("/v1"),
        "WORKER_EMBEDDING_MODEL": "text-embedding-3-small",
        **extra,
    }


def test_embedding_endpoint_503_then_200_leaves_one_vector(
    httpserver: HTTPServer, database_url: str
) -> None:
    embeddings_endpoint(httpserver, first=503)
    binding = annotations.binding("text-embedding-3-small")
    with db.session_scope() as session:
        tenant = factories.make_tenant(session)
        app = annotations.make_app(session, tenant)
        annotations.make_setting(session, app, binding)
        annotation = annotations.make_annotation(session, app, "Is there an API?")
        result = add_annotation_to_index_task.delay(
            str(annotation.id), "Is there an API?", str(tenant.id), str(app.id), str(binding.id)
        )

    worker = WorkerProcess(database_url, "--queues", "annotation", env=openai_env(httpserver))
    try:
        assert result.get(timeout=60) == "indexed"
    finally:
        worker.close()

    assert len(httpserver.log) == 2
    assert annotations.vectors(binding.collection, app.id) == {
        str(annotation.id): "Is there an API?"
    }


def test_enable_killed_mid_embedding_ends_completed_once_in_another_worker(
    httpserver: HTTPServer, database_url: str
) -> None:
    embeddings_endpoint(httpserver, delay=0.4)
    with db.session_scope() as session:
        tenant = factories.make_tenant(session)
        app = annotations.make_app(session, tenant)
        ids = {str(annotations.make_annotation(session, app, f"Q{i}?").id) for i in range(10)}
        job_id = enable(session, tenant, app.id, "model-a")
    env = openai_env(httpserver, WORKER_INDEXING_BATCH_SIZE="2")
    collection = annotations.binding("model-a").collection

    first = WorkerProcess(database_url, "--queues", "annotation", env=env)
    try:
        wait_until(lambda: len(annotations.vectors(collection, app.id)) >= 2, timeout=30)
        first.kill()
        assert len(annotations.vectors(collection, app.id)) < 10, "killed before the end"
        assert annotations.setting_of(app.id) is None, "replies not switched yet"
        second = WorkerProcess(database_url, "--queues", "annotation", env=env)
        try:
            assert final(ENABLE, job_id)["job_status"] == "completed"
        finally:
            second.close()
    finally:
        first.close()

    assert set(annotations.vectors(collection, app.id)) == ids
    assert annotations.setting_of(app.id) is not None
