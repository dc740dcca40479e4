"""The dashboard's pages and actions on a real database, through Flask's test client."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from tests import sample_tasks
from tests.conftest import Manage
from tests.factories import make_dataset, make_document, make_tenant
from tests.inprocess import drain
from worker import db, runtime
from worker.config import Settings
from worker.dashboard.app import create_app
from worker.domain.models import IndexingStatus
from worker.tasks import send_email_code_login_mail_task

TOKEN = "dashboard-token-for-tests"


@pytest.fixture
def app(database_url: str) -> Iterator[Flask]:
    runtime.setup(database_url)
    flask_app = create_app(database_url, Settings(dashboard_token=TOKEN))
    yield flask_app
    flask_app.config["store"].close()
    runtime.teardown()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def scalar(statement: str, **params: object) -> object:
    with db.session_scope(new=True) as session:
        return session.execute(sa.text(statement), params).scalar()


def csrf(client: FlaskClient, path: str = "/login") -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).text)
    assert found, f"no CSRF token on {path}"
    return found.group(1)


def sign_in(client: FlaskClient, name: str = "ada") -> str:
    token = csrf(client)
    response = client.post(
        "/login", data={"csrf_token": token, "token": TOKEN, "operator": name, "next": "/"}
    )
    assert response.status_code == 302, response.text
    return csrf(client, "/jobs")


def job_ids(html: str) -> list[int]:
    return [int(found) for found in re.findall(r'data-job="(\d+)"', html)]


def failed_job(tmp_path: Path) -> int:
    """A job that failed for good: ``tests.flaky`` failing three times, its retry policy's
    three runs (it succeeds if run a fourth time)."""
    result = sample_tasks.flaky.delay(str(tmp_path / "counter"), 3)
    drain(["default"])
    assert scalar("SELECT status FROM procrastinate_jobs WHERE id = :id", id=result.id) == "failed"
    return int(result.id)


def test_the_jobs_page_filters_by_status_task_and_queue(
    client: FlaskClient, tmp_path: Path
) -> None:
    added = [sample_tasks.add.delay(n, n).id for n in range(3)]
    failed = failed_job(tmp_path)
    mail_like = sample_tasks.mail_like.delay("x").id  # waits: only default is drained
    drain(["default"])

    assert job_ids(client.get("/jobs?status=failed").text) == [failed]
    assert job_ids(client.get("/jobs?task=tests.add").text) == sorted(added, reverse=True)
    assert job_ids(client.get("/jobs?queue=mail").text) == [mail_like]
    assert job_ids(client.get("/jobs?status=todo&queue=mail").text) == [mail_like]
    assert job_ids(client.get("/jobs?since=1h").text) == [mail_like, failed, *reversed(added)]
    assert job_ids(client.get("/jobs?until=1h").text) == []
    assert job_ids(client.get(f"/jobs?q={failed}").text) == [failed]


def test_pages_are_keyset_paginated_newest_first(client: FlaskClient) -> None:
    ids = [sample_tasks.add.delay(n, 0).id for n in range(7)]

    first = client.get("/jobs?limit=3").text
    assert job_ids(first) == ids[:3:-1][:3]
    older = re.search(r'id="older" href="([^"]+)"', first)
    assert older
    second = client.get(older.group(1).replace("&amp;", "&")).text
    assert job_ids(second) == [ids[3], ids[2], ids[1]]
    newer = re.search(r'id="newer" href="([^"]+)"', second)
    assert newer
    assert job_ids(client.get(newer.group(1).replace("&amp;", "&")).text) == job_ids(first)
    last = client.get(f"/jobs?limit=3&before={ids[1]}").text
    assert job_ids(last) == [ids[0]]
    assert 'id="older"' not in last


def test_argument_search_never_looks_into_secret_arguments(client: FlaskClient) -> None:
    job = send_email_code_login_mail_task.delay("en-US", "someone@example.com", "834261").id

    assert job_ids(client.get("/jobs?q=someone@example").text) == [job]
    assert job_ids(client.get("/jobs?q=834261").text) == []  # digits: an id, not found
    assert job_ids(client.get("/jobs?q=83426").text) == []
    page = client.get(f"/jobs/{job}").text
    assert "834261" not in page and "someone@example.com" in page


@pytest.mark.parametrize(
    ("query", "named"),
    [("status=nope", "status"), ("since=yesterday", "since"), ("before=-1", "before")],
)
def test_a_malformed_filter_is_refused_naming_it(
    client: FlaskClient, query: str, named: str
) -> None:
    response = client.get(f"/jobs?{query}")

    assert response.status_code == 400
    assert named in response.text


def test_the_job_page_shows_its_timeline_outcome_and_error(
    client: FlaskClient, tmp_path: Path
) -> None:
    job = failed_job(tmp_path)

    page = client.get(f"/jobs/{job}").text

    events = re.findall(r'<span class="badge">(\w+)</span>', page)
    assert [event for event in events if event != "scheduled"] == [
        "deferred", "started", "deferred_for_retry", "started", "deferred_for_retry",
        "started", "failed",
    ]  # fmt: skip
    assert "TransientError" in page and "FAILURE" in page
    assert client.get("/jobs/987654321").status_code == 404


def test_actions_are_refused_without_the_token(database_url: str, tmp_path: Path) -> None:
    runtime.setup(database_url)
    try:
        job = failed_job(tmp_path)
        app = create_app(database_url, Settings())
        client = app.test_client()
        refused = client.post(f"/jobs/{job}/retry", headers={"Authorization": "Bearer whatever"})
        login = client.get("/login").text
        app.config["store"].close()
    finally:
        runtime.teardown()

    assert refused.status_code == 403
    assert "WORKER_DASHBOARD_TOKEN is not set" in refused.text
    assert "Actions are disabled" in login


def test_an_action_needs_a_signed_in_session_or_the_bearer_token(
    client: FlaskClient, tmp_path: Path
) -> None:
    job = failed_job(tmp_path)

    assert client.post(f"/jobs/{job}/retry").status_code == 403
    wrong = client.post(f"/jobs/{job}/retry", headers={"Authorization": "Bearer not-the-token"})
    assert wrong.status_code == 403
    assert scalar("SELECT status FROM procrastinate_jobs WHERE id = :id", id=job) == "failed"

    done = client.post(
        f"/jobs/{job}/retry",
        headers={"Authorization": f"Bearer {TOKEN}", "X-Dashboard-Operator": "ops-bot"},
    )
    assert done.status_code == 302
    assert scalar("SELECT status FROM procrastinate_jobs WHERE id = :id", id=job) == "todo"
    assert scalar("SELECT actor || ' ' || action || ' ' || target FROM dashboard_actions") == (
        f"ops-bot retry {job}"
    )


def test_a_signed_in_form_needs_its_csrf_token(client: FlaskClient, tmp_path: Path) -> None:
    job = failed_job(tmp_path)
    assert 'data-action="act_retry"' not in client.get(f"/jobs/{job}").text
    token = sign_in(client, "grace")
    assert 'data-action="act_retry"' in client.get(f"/jobs/{job}").text
    assert 'data-action="act_pause"' in client.get("/").text

    forged = client.post(f"/jobs/{job}/retry", data={"next": "/"})
    assert forged.status_code == 400
    assert "CSRF" in forged.text
    assert client.post(f"/jobs/{job}/retry", data={"csrf_token": token}).status_code == 302
    drain(["default"])

    assert scalar("SELECT status FROM procrastinate_jobs WHERE id = :id", id=job) == "succeeded"
    log = client.get("/actions").text
    assert "grace" in log and "queued again" in log


def test_cancel_a_waiting_job_and_refuse_a_finished_one(client: FlaskClient) -> None:
    waiting = sample_tasks.add.delay(1, 1).id
    done = sample_tasks.add.delay(2, 2).id
    drain_only_done = f"UPDATE procrastinate_jobs SET status = 'succeeded' WHERE id = {done}"
    with db.session_scope(new=True) as session:
        session.execute(sa.text(drain_only_done))
    token = sign_in(client)

    client.post(f"/jobs/{waiting}/cancel", data={"csrf_token": token})
    refused = client.post(f"/jobs/{done}/cancel", data={"csrf_token": token}, follow_redirects=True)

    assert scalar("SELECT status FROM procrastinate_jobs WHERE id = :id", id=waiting) == "cancelled"
    assert "refused" in refused.text and "only waiting or running jobs" in refused.text
    assert scalar("SELECT count(*) FROM dashboard_actions WHERE outcome LIKE 'refused:%'") == 1


def test_a_paused_queue_is_not_fetched_until_resumed(client: FlaskClient) -> None:
    token = sign_in(client)
    client.post("/queues/default/pause", data={"csrf_token": token})
    job = sample_tasks.add.delay(20, 22).id

    drain(["default"])
    assert scalar("SELECT status FROM procrastinate_jobs WHERE id = :id", id=job) == "todo"
    assert "paused by ada" in client.get("/").text

    client.post("/queues/default/resume", data={"csrf_token": token})
    drain(["default"])
    assert scalar("SELECT status FROM procrastinate_jobs WHERE id = :id", id=job) == "succeeded"
    assert client.post("/queues/nope/pause", data={"csrf_token": token}).status_code == 302
    assert scalar("SELECT outcome FROM dashboard_actions ORDER BY id DESC LIMIT 1") == (
        "refused: unknown queue 'nope'; known: dataset, priority_dataset, mail, annotation, "
        "default, ops_trace, app_deletion, plugin"
    )


def test_recover_a_stuck_document_defers_its_recovery_once(client: FlaskClient) -> None:
    with db.session_scope(new=True) as session:
        dataset = make_dataset(session, make_tenant(session))
        stuck = make_document(session, dataset, indexing_status=IndexingStatus.INDEXING)
        done = make_document(session, dataset, position=2, indexing_status=IndexingStatus.COMPLETED)
        stuck_id, done_id = str(stuck.id), str(done.id)
    token = sign_in(client)

    assert stuck_id in client.get("/knowledge").text
    client.post(f"/documents/{stuck_id}/recover", data={"csrf_token": token})
    client.post(f"/documents/{stuck_id}/recover", data={"csrf_token": token})
    client.post(f"/documents/{done_id}/recover", data={"csrf_token": token})
    client.post(f"/documents/{uuid.uuid4()}/recover", data={"csrf_token": token})

    assert (
        scalar(
            "SELECT count(*) FROM procrastinate_jobs WHERE task_name = "
            "'indexing.recover_document_indexing' AND args ->> 'document_id' = :id",
            id=stuck_id,
        )
        == 1
    )
    outcomes = [
        row[0].split(" as job")[0]
        for row in db_rows("SELECT outcome FROM dashboard_actions ORDER BY id")
    ]
    assert outcomes == [
        "recovery deferred",
        f"refused: a recovery of document {stuck_id} already waits",
        f"refused: document {done_id} is completed: only documents left in progress are recovered",
        outcomes[3],
    ]
    assert outcomes[3].startswith("refused: no document")


def db_rows(statement: str) -> list[sa.Row[object]]:
    with db.session_scope(new=True) as session:
        return list(session.execute(sa.text(statement)))


def test_the_overview_counts_match_the_database(client: FlaskClient, tmp_path: Path) -> None:
    for n in range(4):
        sample_tasks.add.delay(n, n)
    failed_job(tmp_path)
    sample_tasks.mail_like.delay("waits")
    drain(["default"])

    page = client.get("/?partial=1").text

    def figure(name: str) -> int:
        found = re.search(rf'id="{name}">(\d+)<', page)
        assert found, name
        return int(found.group(1))

    ended = db_rows(
        "SELECT type, count(*) FROM procrastinate_events "
        "WHERE type IN ('succeeded', 'failed') GROUP BY type"
    )
    assert {"succeeded": figure("total-succeeded"), "failed": figure("total-failed")} == {
        str(row[0]): row[1] for row in ended
    }
    assert figure("total-ready") == 1
    bars = re.findall(r'data-succeeded="(\d+)" data-failed="(\d+)"', page)
    assert len(bars) == 60
    assert sum(int(ok) for ok, _ in bars) == 4
    assert sum(int(bad) for _, bad in bars) == 1


def test_the_knowledge_schedule_and_mail_pages_answer(client: FlaskClient) -> None:
    for path in ("/knowledge", "/schedule", "/mail", "/actions", "/login", "/healthz"):
        assert client.get(path).status_code == 200, path


def test_bad_dashboard_options_and_settings_are_refused_in_one_line(manage: Manage) -> None:
    port = manage("dashboard", "--port", "70000")
    token = manage("dashboard", env={"WORKER_DASHBOARD_TOKEN": "short"})

    assert port.returncode == 2
    assert "expected a port number 0..65535, got '70000'" in port.stderr
    assert token.returncode == 2
    assert token.stderr.strip() == (
        "manage.py: error: invalid configuration: WORKER_DASHBOARD_TOKEN: "
        "must be at least 16 characters long"
    )
