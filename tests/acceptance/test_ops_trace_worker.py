"""Ops traces through a real worker: SIGKILLed after its request reached Langfuse, the job runs
again in another worker and sends the same event ids; the payload goes once the outcome is in."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from pytest_httpserver import HTTPServer

from tests.acceptance.workers import WorkerProcess, wait_until
from tests.langfuse_fake import FakeLangfuse, make_traced_app
from worker import api, db, runtime
from worker.config import Settings
from worker.domain.models import TraceDelivery

pytestmark = pytest.mark.slow

MESSAGE = {
    "message_id": "1b7f5e0c-3c1e-4f7a-9d7e-2a1f0c9b8e77", "inputs": {"q": "hi"},
    "outputs": "hello", "message_tokens": 2, "answer_tokens": 1, "total_tokens": 3,
}  # fmt: skip


@pytest.fixture
def langfuse() -> Iterator[FakeLangfuse]:
    # threaded: the request held for the killed worker must not delay the next worker's
    server = HTTPServer(host="127.0.0.1", threaded=True)
    server.start()
    yield FakeLangfuse(server)
    server.clear()
    if server.is_running():
        server.stop()


@pytest.fixture(autouse=True)
def task_layer(database_url: str, tmp_path: Path) -> Iterator[None]:
    runtime.setup(database_url, settings=Settings(storage_local_path=tmp_path / "storage"))
    yield
    runtime.teardown()


def status(file_id: str) -> str | None:
    with db.session_scope(new=True) as session:
        row = session.get(TraceDelivery, file_id)
        return None if row is None else row.status.value


def test_a_worker_killed_after_the_send_is_followed_by_a_resend_of_the_same_event_ids(
    database_url: str, tmp_path: Path, langfuse: FakeLangfuse, workers: list[WorkerProcess]
) -> None:
    fake = langfuse
    app_id = make_traced_app(fake.host)
    file_id = api.trace(app_id, "MessageTraceInfo", MESSAGE)
    assert file_id is not None
    payload = tmp_path / "storage" / "ops_trace" / app_id / f"{file_id}.json"
    env = {"STORAGE_LOCAL_PATH": str(tmp_path / "storage")}

    fake.hold()  # the first request reaches Langfuse and waits for its reply
    workers.append(first := WorkerProcess(database_url, "--queues", "ops_trace", env=env))
    assert fake.arrived.wait(timeout=60), "the worker never sent"
    first.kill()
    fake.release()
    assert status(file_id) == "pending"
    assert payload.is_file(), "no outcome yet: the payload stays"

    workers.append(second := WorkerProcess(database_url, "--queues", "ops_trace", env=env))
    wait_until(lambda: status(file_id) == "sent", timeout=90, message="never redelivered")
    wait_until(lambda: not payload.exists(), timeout=10, message="payload left behind")
    assert second.stop() == 0

    assert len(fake.received) == 2, second.output()
    first_send, resend = fake.received
    assert first_send.event_ids == resend.event_ids
    assert first_send.types == ["trace-create", "generation-create"]
    with db.session_scope(new=True) as session:
        row = session.execute(sa.text(
            "SELECT status::text FROM procrastinate_jobs"
            " WHERE task_name = 'ops_trace.process_trace'"
        )).one()  # fmt: skip
        attempts = session.scalar(
            sa.select(TraceDelivery.attempts).where(TraceDelivery.file_id == file_id)
        )
    assert row.status == "succeeded"
    assert attempts == 2
