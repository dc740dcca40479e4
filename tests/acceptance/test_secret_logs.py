"""Every mail task with a secret argument, through its whole life: deferred by Dify's name on
the command line, run by a real worker (delivered, or failed for good), shown, listed and
retried on the command line. No log line and no command's output may hold the secret, the jobs
table must not keep it, and a job whose secret was erased cannot be retried."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from tests.acceptance.workers import WorkerProcess, wait_until
from tests.conftest import Manage
from tests.smtp import SMTPServer
from worker import runtime
from worker.jobs import FAILURE, SUCCESS, AsyncResult, CeleryTask, catalog

pytestmark = pytest.mark.slow

#: A value for every non-secret argument of the mail tasks.
VALUES = {
    "language": "en-US",
    "to": "user@x.test",
    "inviter_name": "Ann",
    "workspace_name": "Lab",
    "workspace": "Lab",
    "phase": "new_email",
    "new_owner_email": "owner@x.test",
}


@pytest.fixture
def smtp() -> Iterator[SMTPServer]:
    with SMTPServer() as server:
        yield server


def secret_tasks() -> list[CeleryTask]:
    """The product's tasks with secret arguments (not those other test modules registered on
    the same app in this process)."""
    catalog.import_tasks()
    found = []
    for info in catalog.describe_all():
        task = catalog.find(info.name)
        if (
            info.secret_args
            and isinstance(task, CeleryTask)
            and task.run.__module__.startswith("worker.")
        ):
            found.append(task)
    return found


def arguments(task: CeleryTask, secret: str, *, deliverable: bool) -> dict[str, str]:
    names = task.signature.parameters
    values = {name: secret if name in ("code", "token") else VALUES[name] for name in names}
    if not deliverable:
        values["to"] = "not an address"  # refused for good before any delivery
    return values


def test_no_secret_of_a_mail_job_reaches_a_log_an_output_or_the_jobs_table(
    manage: Manage, database_url: str, smtp: SMTPServer, engine: sa.Engine
) -> None:
    env = {
        "DATABASE_URL": database_url,
        "LOG_LEVEL": "DEBUG",
        "MAIL_TYPE": "smtp",
        "SMTP_SERVER": "127.0.0.1",
        "SMTP_PORT": str(smtp.port),
        "MAIL_DEFAULT_SEND_FROM": "no-reply@dify.example",
    }
    tasks = secret_tasks()
    assert {task.name for task in tasks} >= {"mail.email_code_login", "mail.invite_member"}
    outputs: list[str] = []
    jobs: dict[str, tuple[str, bool]] = {}  # job id -> (secret, delivered)
    for number, task in enumerate(tasks):
        for deliverable in (True, False):
            secret = f"S3CRET{number}{'OK' if deliverable else 'KO'}"
            payload = json.dumps(arguments(task, secret, deliverable=deliverable))
            deferred = manage("defer", task.run.__name__, "--json", payload, env=env)
            assert deferred.returncode == 0, deferred.stderr
            outputs.append(deferred.stdout + deferred.stderr)
            jobs[deferred.stdout.strip()] = (secret, deliverable)

    runtime.setup(database_url)
    worker = WorkerProcess(database_url, "--queues", "mail", env=env)
    try:
        results = [AsyncResult(job_id) for job_id in jobs]
        wait_until(lambda: all(r.status in (SUCCESS, FAILURE) for r in results), timeout=60)
        statuses = {r.id: r.status for r in results}
    finally:
        worker.stop()
        outputs.append(worker.output())
        worker.close()
        runtime.teardown()
    for job_id, (_, delivered) in jobs.items():
        shown = manage("jobs", "show", job_id, env=env)
        outputs.append(shown.stdout + shown.stderr)
        assert statuses[int(job_id)] == (SUCCESS if delivered else FAILURE)
        if not delivered:
            retried = manage("jobs", "retry", job_id, env=env)
            outputs.append(retried.stdout + retried.stderr)
            assert retried.returncode == 1
            refusal = retried.stderr.splitlines()[-1]  # after the DEBUG lines
            assert refusal.startswith(f"manage.py: error: job {job_id} cannot be retried")
            assert "were erased" in refusal
    listed = manage("jobs", "list", env=env)
    outputs.append(listed.stdout + listed.stderr)

    log = "\n".join(outputs)
    assert "Deferred 1 job" in log and "About to defer" in log and "failed after" in log
    leaked = [secret for secret, _ in jobs.values() if secret in log]
    assert leaked == []
    assert "Traceback" not in log, "a failure that was expected logs one line"
    with engine.connect() as connection:
        stored = connection.execute(sa.text("SELECT args::text FROM procrastinate_jobs")).all()
    assert not [row for row in stored for secret, _ in jobs.values() if secret in row[0]]
    mails = "\n".join(received.html for received in smtp.received)
    delivered_secrets = [secret for secret, delivered in jobs.values() if delivered]
    assert len(smtp.received) == len(delivered_secrets)
    assert all(secret in mails for secret in delivered_secrets), "the secrets were real"
