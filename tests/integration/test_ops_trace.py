"""Ops traces over real HTTP against a fake Langfuse on 127.0.0.1: what is sent, what is
recorded, when the payload file goes."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from pytest_httpserver import HTTPServer

from tests import factories, inprocess
from tests.langfuse_fake import SECRET_KEY, FakeLangfuse, basic, make_traced_app
from tests.uow import run
from worker import api, db, runtime
from worker.config import Settings
from worker.domain import ops_trace
from worker.domain.models import App, TraceAppConfig, TraceDelivery
from worker.domain.ops_trace.events import derived_id
from worker.tasks import process_trace_tasks

MESSAGE_ID = "8c3b0a52-0b8e-4a55-9b1f-0f5e8d1a7c11"
MESSAGE = {
    "message_id": MESSAGE_ID,
    "conversation_id": "c-1",
    "inputs": {"query": "hello"},
    "outputs": "hi there",
    "start_time": "2026-12-01T10:00:00",
    "end_time": "2026-12-01T10:00:02",
    "metadata": {"user_id": "u-1"},
    "message_tokens": 5,
    "answer_tokens": 3,
    "total_tokens": 8,
    "message_data": {"model_id": "gpt-4o-mini"},
}


@pytest.fixture
def fake(httpserver: HTTPServer) -> FakeLangfuse:
    return FakeLangfuse(httpserver)


@pytest.fixture
def storage(tmp_path: Path) -> Path:
    return tmp_path / "storage"


@pytest.fixture(autouse=True)
def task_layer(database_url: str, storage: Path) -> Iterator[None]:
    runtime.setup(database_url, settings=Settings(storage_local_path=storage, http_timeout=5))
    yield
    runtime.teardown()


def payload_path(storage: Path, app_id: str, file_id: str) -> Path:
    return storage / "ops_trace" / app_id / f"{file_id}.json"


def delivery(file_id: str) -> dict[str, Any]:
    with db.session_scope(new=True) as session:
        row = session.get(TraceDelivery, file_id)
        assert row is not None
        return {"status": row.status.value, "attempts": row.attempts, "error": row.error,
                "events": row.events, "sent_at": row.sent_at}  # fmt: skip


def job_status() -> str:
    with db.session_scope(new=True) as session:
        return str(session.scalar(sa.text(
            "SELECT status FROM procrastinate_jobs WHERE task_name = 'ops_trace.process_trace'"
        )))  # fmt: skip


def retry_now() -> None:
    with db.session_scope(new=True) as session:
        session.execute(sa.text("UPDATE procrastinate_jobs SET scheduled_at = now()"
                                " WHERE status = 'todo'"))  # fmt: skip


def defer(app_id: str, kind: str = "MessageTraceInfo", info: dict[str, Any] = MESSAGE) -> str:
    file_id = api.trace(app_id, kind, info)
    assert file_id is not None
    return file_id


def test_a_message_is_sent_with_basic_auth_as_trace_and_generation(
    fake: FakeLangfuse, storage: Path
) -> None:
    app_id = make_traced_app(fake.host)
    file_id = defer(app_id)
    assert payload_path(storage, app_id, file_id).is_file()

    inprocess.drain(["ops_trace"])

    [request] = fake.received
    assert (
        request.authorization
        == basic()
        == "Basic " + "cGstbGYtdGVzdDpzay1sZi12ZXJ5LXNlY3JldC0wMTIzNDU2Nzg5"
    )
    trace, generation = request.body["batch"]
    assert request.event_ids == [derived_id(file_id, "event/0"), derived_id(file_id, "event/1")]
    assert trace["type"] == "trace-create"
    assert trace["timestamp"] == "2026-12-01T10:00:02+00:00"
    assert trace["body"] == {
        "id": MESSAGE_ID, "name": "message", "timestamp": "2026-12-01T10:00:00+00:00",
        "input": {"query": "hello"}, "output": "hi there", "userId": "u-1", "sessionId": "c-1",
        "metadata": {"user_id": "u-1"}, "tags": ["message"],
    }  # fmt: skip
    assert generation["type"] == "generation-create"
    assert generation["body"] == {
        "id": derived_id(file_id, "generation"), "traceId": MESSAGE_ID, "name": "llm",
        "startTime": "2026-12-01T10:00:00+00:00", "endTime": "2026-12-01T10:00:02+00:00",
        "input": {"query": "hello"}, "output": "hi there", "metadata": {"user_id": "u-1"},
        "level": "DEFAULT", "model": "gpt-4o-mini",
        "usage": {"input": 5, "output": 3, "total": 8, "unit": "TOKENS"},
    }  # fmt: skip
    assert delivery(file_id) | {"sent_at": None} == {
        "status": "sent", "attempts": 1, "error": None, "events": 2, "sent_at": None
    }  # fmt: skip
    assert delivery(file_id)["sent_at"] is not None
    assert not payload_path(storage, app_id, file_id).exists()
    assert job_status() == "succeeded"


def test_503_then_accepted_is_one_sent_delivery_with_the_same_event_ids(
    fake: FakeLangfuse, storage: Path
) -> None:
    app_id = make_traced_app(fake.host)
    fake.reply(503, {"message": "overloaded"})
    file_id = defer(app_id)

    inprocess.drain(["ops_trace"])
    assert job_status() == "todo"  # retried later
    pending = delivery(file_id)
    assert pending["status"] == "pending"
    assert "HTTP 503: overloaded" in pending["error"]
    assert payload_path(storage, app_id, file_id).is_file(), "kept for the retry"

    retry_now()
    inprocess.drain(["ops_trace"])

    first, second = fake.received
    assert first.event_ids == second.event_ids
    assert delivery(file_id)["status"] == "sent"
    assert delivery(file_id)["attempts"] == 2
    assert not payload_path(storage, app_id, file_id).exists()
    assert job_status() == "succeeded"


def test_401_fails_with_the_providers_reason_and_deletes_the_file(
    fake: FakeLangfuse, storage: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app_id = make_traced_app(fake.host)
    fake.reply(401, {"message": "Invalid credentials. Confirm that you've configured the host."})
    file_id = defer(app_id)

    with caplog.at_level(logging.DEBUG):
        inprocess.drain(["ops_trace"])

    failed = delivery(file_id)
    assert failed["status"] == "failed"
    assert "HTTP 401: Invalid credentials" in failed["error"]
    assert not payload_path(storage, app_id, file_id).exists()
    assert job_status() == "failed"
    assert len(fake.received) == 1, "not retried"
    with db.session_scope(new=True) as session:
        rows = session.execute(sa.text(
            "SELECT j.args::text, coalesce(r.error, ''), coalesce(r.result::text, '')"
            " FROM procrastinate_jobs j LEFT JOIN task_results r ON r.job_id = j.id"
        )).all()  # fmt: skip
    assert SECRET_KEY not in json.dumps([list(row) for row in rows])
    assert SECRET_KEY not in caplog.text


def test_a_per_event_error_in_the_207_reply_fails_the_job_with_its_message(
    fake: FakeLangfuse, storage: Path
) -> None:
    app_id = make_traced_app(fake.host)
    file_id = defer(app_id)
    event = derived_id(file_id, "event/1")
    fake.reply(207, {"successes": [], "errors": [
        {"id": event, "status": 400, "message": "Invalid request data", "error": "usage.unit"}
    ]})  # fmt: skip

    inprocess.drain(["ops_trace"])

    failed = delivery(file_id)
    assert failed["status"] == "failed"
    assert f"{event} 400 Invalid request data usage.unit" in failed["error"]
    assert job_status() == "failed"
    assert not payload_path(storage, app_id, file_id).exists()


def test_tracing_disabled_since_the_defer_is_skipped(fake: FakeLangfuse, storage: Path) -> None:
    app_id = make_traced_app(fake.host)
    file_id = defer(app_id)
    with db.session_scope() as session:
        off = {"enabled": False, "tracing_provider": "langfuse"}
        session.execute(sa.update(App).where(App.id == uuid.UUID(app_id)).values(tracing=off))

    inprocess.drain(["ops_trace"])

    assert fake.received == []
    skipped = delivery(file_id)
    assert skipped["status"] == "skipped"
    assert skipped["error"] == "tracing is disabled for the app"
    assert not payload_path(storage, app_id, file_id).exists()
    assert job_status() == "succeeded"


def test_a_workflow_is_a_trace_with_a_span_per_node_and_a_tool_a_trace_and_a_span(
    fake: FakeLangfuse,
) -> None:
    app_id = make_traced_app(fake.host)
    run_id = str(uuid.uuid4())
    workflow = {
        "workflow_run_id": run_id, "inputs": {"x": 1}, "outputs": {"y": 2},
        "node_executions": [
            {"id": "n-1", "title": "Start", "inputs": {}, "outputs": {"x": 1}},
            {"id": "n-2", "title": "LLM", "error": "quota exceeded"},
        ],
    }  # fmt: skip
    workflow_file = defer(app_id, "WorkflowTraceInfo", workflow)
    tool_file = defer(app_id, "ToolTraceInfo", {"tool_name": "search", "inputs": {"q": "a"}})

    inprocess.drain(["ops_trace"])

    by_file = {r.body["batch"][0]["id"]: r for r in fake.received}
    flow = by_file[derived_id(workflow_file, "event/0")]
    assert flow.types == ["trace-create", "span-create", "span-create", "span-create"]
    run_span = derived_id(workflow_file, "workflow")
    spans = [event["body"] for event in flow.body["batch"][1:]]
    assert [s["id"] for s in spans] == [run_span, "n-1", "n-2"]
    assert {s["traceId"] for s in spans} == {run_id}
    assert [s.get("parentObservationId") for s in spans] == [None, run_span, run_span]
    assert spans[2]["level"] == "ERROR" and spans[2]["statusMessage"] == "quota exceeded"
    tool = by_file[derived_id(tool_file, "event/0")]
    assert tool.types == ["trace-create", "span-create"]
    assert tool.body["batch"][1]["body"]["name"] == "tool:search"


def test_a_missing_payload_fails_and_a_finished_one_answers_its_outcome(
    fake: FakeLangfuse, storage: Path
) -> None:
    app_id = make_traced_app(fake.host)
    with pytest.raises(ops_trace.PayloadMissing):
        process_trace_tasks({"file_id": "f" * 32, "app_id": app_id})
    assert delivery("f" * 32)["status"] == "failed"

    file_id = defer(app_id)
    inprocess.drain(["ops_trace"])
    payload_path(storage, app_id, file_id).write_text("{}")  # a crash left it behind
    again = process_trace_tasks({"file_id": file_id, "app_id": app_id})
    assert again == {"file_id": file_id, "status": "sent", "already": True}
    assert len(fake.received) == 1
    assert not payload_path(storage, app_id, file_id).exists()


def test_bad_file_info_is_refused_naming_the_problem() -> None:
    with pytest.raises(ops_trace.InvalidTraceFile, match=r"file_id '\.\./x' is not a payload"):
        process_trace_tasks({"file_id": "../x", "app_id": str(uuid.uuid4())})
    with pytest.raises(ops_trace.InvalidTraceFile, match="app_id 'nope' is not a UUID"):
        process_trace_tasks({"file_id": "abc", "app_id": "nope"})


def test_the_helper_writes_nothing_for_an_app_without_tracing_and_a_rollback_leaves_nothing(
    fake: FakeLangfuse, storage: Path
) -> None:
    off = make_traced_app(fake.host, enabled=False)
    assert api.trace(off, "MessageTraceInfo", MESSAGE) is None
    on = make_traced_app(fake.host)
    with pytest.raises(RuntimeError), db.session_scope() as session:
        file_id = api.trace(on, "MessageTraceInfo", MESSAGE, session=session)
        assert file_id is not None and payload_path(storage, on, file_id).is_file()
        raise RuntimeError("the app's transaction fails")
    assert not payload_path(storage, on, file_id).exists()
    with db.session_scope(new=True) as session:
        assert session.scalar(sa.text("SELECT count(*) FROM procrastinate_jobs")) == 0
    with pytest.raises(ops_trace.InvalidPayload, match="unknown trace_info_type 'Bogus'"):
        api.trace(on, "Bogus", {})


def test_the_sweep_deletes_payloads_whose_outcome_is_final_and_old_orphans_only(
    fake: FakeLangfuse, storage: Path
) -> None:
    app_id = make_traced_app(fake.host)
    sent = defer(app_id)
    inprocess.drain(["ops_trace"])
    payload_path(storage, app_id, sent).write_text("{}")  # left by a crash after the commit
    waiting = defer(app_id)  # its job has not run: kept however old
    orphan = payload_path(storage, app_id, "0" * 32)  # written by a transaction that rolled back
    orphan.write_text("{}")
    policy = ops_trace.SweepPolicy(task_name=process_trace_tasks.name)

    counts = run(ops_trace.sweep, storage, policy)
    assert counts == {"final": 1, "orphaned": 0, "deliveries": 0}
    assert not payload_path(storage, app_id, sent).exists()
    assert orphan.exists(), "too young to be taken for an orphan"

    counts = run(ops_trace.sweep, storage, policy, now=datetime.now(UTC) + timedelta(days=2))
    assert counts == {"final": 0, "orphaned": 1, "deliveries": 0}
    assert payload_path(storage, app_id, waiting).exists()
    assert not orphan.exists()

    counts = run(ops_trace.sweep, storage, policy, now=datetime.now(UTC) + timedelta(days=8))
    assert counts["deliveries"] == 1
