"""App and account deletion through real worker processes: an app deletion SIGKILLed mid-way
resumes to nothing left (its progress in ``jobs show`` meanwhile), a table that refuses its
rows fails the job naming it without looping, and account closures mail exactly when they
commit (a fake billing service over HTTP, a real SMTP server)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from pytest_httpserver import HTTPServer

from tests import app_scenario as scenario
from tests.acceptance.workers import WorkerProcess, wait_until
from tests.conftest import Manage
from tests.smtp import SMTPServer
from worker import api, db, runtime
from worker.config import Settings
from worker.domain.models import Account, AccountStatus
from worker.tasks.app_deletion import delete_account_task

pytestmark = pytest.mark.slow

TASK = "app_deletion.remove_app_and_related_data"
#: Extra node executions of the app: the deletion walks them in 200 batches.
FILLER = 200_000


@pytest.fixture(autouse=True)
def task_layer(database_url: str, tmp_path: Path) -> Iterator[None]:
    runtime.setup(database_url, settings=Settings(storage_local_path=tmp_path / "storage"))
    yield
    runtime.teardown()


def job() -> dict[str, Any]:
    with db.session_scope() as session:
        row = session.execute(
            sa.text(
                "SELECT j.id, j.status, j.attempts, j.scheduled_at > now() AS later, p.progress"
                " FROM procrastinate_jobs AS j LEFT JOIN job_progress AS p ON p.job_id = j.id"
                " WHERE j.task_name = :t"
            ),
            {"t": TASK},
        ).one()
    return dict(row._mapping)


def executions_deleted() -> int:
    progress = job()["progress"]
    return int(progress["deleted"].get("workflow_node_executions", 0)) if progress else 0


def test_an_app_deletion_killed_mid_way_resumes_to_nothing_left(
    database_url: str, tmp_path: Path, workers: list[WorkerProcess], manage: Manage
) -> None:
    storage = tmp_path / "storage"
    built = scenario.build(storage, conversations=100, per_conversation=30, runs=2000)
    with db.session_scope() as session:
        session.execute(
            sa.text(
                "INSERT INTO workflow_node_executions (tenant_id, app_id, triggered_from,"
                " node_id, node_type, title, status) SELECT :t, :a, 'single-step', 'n' || g,"
                " 'code', 'Code', 'succeeded' FROM generate_series(1, :n) AS g"
            ),
            {"t": uuid.UUID(built.tenant_id), "a": uuid.UUID(built.app_id), "n": FILLER},
        )
    other = scenario.counts(built.other_app_id)
    assert api.delete_app(built.app_id)

    env = {"STORAGE_LOCAL_PATH": str(storage)}
    workers.append(first := WorkerProcess(database_url, "--queues", "app_deletion", env=env))
    wait_until(lambda: executions_deleted() > 0, timeout=60, message="never started")
    first.kill()
    assert job()["status"] == "doing"
    left = scenario.counts(built.app_id)
    assert left["workflow_node_executions"] > 0, "killed mid-deletion"
    shown = manage("jobs", "show", str(job()["id"]), env={"DATABASE_URL": database_url})
    assert shown.returncode == 0, shown.stderr
    line = next(x for x in shown.stdout.splitlines() if x.startswith("progress"))
    progress = json.loads(line.split(maxsplit=1)[1])
    assert progress["step"] == "workflow_node_executions"
    assert 0 < progress["deleted"]["workflow_node_executions"] < FILLER + 4000

    workers.append(second := WorkerProcess(database_url, "--queues", "app_deletion", env=env))
    wait_until(lambda: job()["status"] == "succeeded", timeout=180, message="not resumed")
    assert second.stop() == 0

    assert set(scenario.counts(built.app_id).values()) == {0}
    assert scenario.upload_rows(list(built.files)) == 0
    assert scenario.blobs(storage, built.files.values()) == []
    assert scenario.counts(built.other_app_id) == other
    assert scenario.blobs(storage, built.other_files.values()) == list(built.other_files.values())
    with db.session_scope() as session:
        result = session.scalar(
            sa.text("SELECT result FROM task_results WHERE job_id = :j"), {"j": job()["id"]}
        )
    assert result["workflow_node_executions"] == FILLER + 4000, "every batch counted once"
    assert result["messages"] == 3000 and result["embedding_vectors"] == 4


def test_a_table_that_refuses_its_rows_fails_the_job_naming_it_without_looping(
    database_url: str, tmp_path: Path, workers: list[WorkerProcess]
) -> None:
    storage = tmp_path / "storage"
    built = scenario.build(storage, conversations=5, per_conversation=4, runs=10)
    scenario.refuse("end_users", "end users are kept")
    assert api.delete_app(built.app_id)
    env = {"STORAGE_LOCAL_PATH": str(storage)}
    workers.append(worker := WorkerProcess(database_url, "--queues", "app_deletion", env=env))
    wait_until(lambda: job()["attempts"] == 1, timeout=60, message="never failed")

    found = job()
    assert (found["status"], found["later"]) == ("todo", True), "waits for its retry"
    with db.session_scope() as session:
        error = session.scalar(
            sa.text("SELECT error FROM task_results WHERE job_id = :j"), {"j": found["id"]}
        )
    assert error.startswith("DeletionFailed: deleting from end_users failed")
    assert "end users are kept" in error
    left = scenario.counts(built.app_id)
    assert left["end_users"] == 50 and left["messages"] == 0
    assert worker.stop() == 0
    assert job()["attempts"] == 1, "one run, no loop"
    assert worker.output().count("deleting from end_users failed") == 1


@pytest.fixture
def smtp() -> Iterator[SMTPServer]:
    with SMTPServer() as server:
        yield server


def make_account(email: str) -> str:
    with db.session_scope() as session:
        account = Account(name="Ada", email=email, interface_language="en-US")
        session.add(account)
        session.flush()
        return str(account.id)


def status_of(account_id: str) -> AccountStatus | None:
    with db.session_scope() as session:
        return session.scalar(sa.select(Account.status).where(Account.id == account_id))


def test_accounts_closed_by_a_worker_with_and_without_billing_are_mailed_once(
    database_url: str, workers: list[WorkerProcess], smtp: SMTPServer, httpserver: HTTPServer
) -> None:
    mail = {
        "MAIL_TYPE": "smtp", "SMTP_SERVER": "127.0.0.1", "SMTP_PORT": str(smtp.port),
        "MAIL_DEFAULT_SEND_FROM": "Dify <no-reply@dify.example>",
    }  # fmt: skip
    local = make_account("local@example.com")
    delete_account_task.delay(local)
    workers.append(worker := WorkerProcess(database_url, "--queues", "default,mail", env=mail))
    wait_until(lambda: len(smtp.received) == 1, timeout=60, message="no mail")
    assert status_of(local) == AccountStatus.CLOSED
    assert smtp.received[0].recipients == ["local@example.com"]
    assert worker.stop() == 0

    billed = make_account("billed@example.com")
    httpserver.expect_oneshot_request(
        "/account/", method="DELETE", query_string={"account_id": billed},
        headers={"Billing-Api-Secret-Key": "s3cret"},
    ).respond_with_json({"result": "success"})  # fmt: skip
    billing = {
        "BILLING_ENABLED": "true", "BILLING_API_URL": httpserver.url_for("/"),
        "BILLING_API_SECRET_KEY": "s3cret",
    }  # fmt: skip
    delete_account_task.delay(billed)
    workers.append(
        worker := WorkerProcess(database_url, "--queues", "default,mail", env={**mail, **billing})
    )
    wait_until(lambda: len(smtp.received) == 2, timeout=60, message="no mail")
    httpserver.check_assertions()
    assert smtp.received[1].recipients == ["billed@example.com"]
    assert status_of(billed) == AccountStatus.ACTIVE, "the billing service deletes it"
    assert worker.stop() == 0
    assert len(smtp.received) == 2
