"""The job commands of manage.py against a real database, run as subprocesses."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tests.conftest import Manage
from tests.integration.test_cli import assert_one_line_error


@pytest.fixture
def env(database_url: str) -> dict[str, str]:
    return {"DATABASE_URL": database_url, "WORKER_IMPORT_PATHS": "tests.sample_tasks"}


def job_count(engine: sa.Engine) -> int:
    with engine.connect() as connection:
        return connection.execute(sa.text("SELECT count(*) FROM procrastinate_jobs")).scalar_one()


def test_defer_prints_the_job_id_and_show_describes_it(
    manage: Manage, env: dict[str, str], engine: sa.Engine
) -> None:
    deferred = manage(
        "defer", "tests.add", "--json", '{"x": 1, "y": 2}', "--queue", "mail",
        "--lock", "l1", "--queueing-lock", "q1", "--schedule-in", "60", env=env,
    )  # fmt: skip
    assert deferred.returncode == 0, deferred.stderr
    job_id = deferred.stdout.strip()
    assert job_id.isdigit()

    shown = manage("jobs", "show", job_id, env=env)

    assert shown.returncode == 0, shown.stderr
    lines = dict(line.split(maxsplit=1) for line in shown.stdout.splitlines())
    assert lines["task_name"] == "tests.add"
    assert lines["queue_name"] == "mail"
    assert lines["state"] == "PENDING"
    assert lines["lock"] == "l1"
    assert lines["queueing_lock"] == "q1"
    assert lines["args"] == '{"x": 1, "y": 2}'
    assert lines["scheduled_at"] != "-"


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["defer", "tests.nope"], "unknown task 'tests.nope'; `manage.py tasks` lists"),
        (["defer", "tests.add", "--json", "{bad"], "--json is not valid JSON"),
        (["defer", "tests.add", "--json", "[1, 2]"], "--json must be an object"),
        (["defer", "tests.add", "--json", '{"x": 1}'], "missing a required argument: 'y'"),
        (["defer", "tests.add", "--json", '{"x": 1, "y": 2, "z": 3}'], "unexpected keyword"),
        (["defer", "tests.add", "--schedule-in", "soon"], "expected a number of seconds"),
        (["jobs", "show", "999"], "no job with id 999"),
        (["jobs", "retry", "999"], "no job with id 999"),
        (["jobs", "cancel", "999"], "no job with id 999"),
        (["jobs", "show", "abc"], "invalid int value: 'abc'"),
    ],
)
def test_bad_job_commands_are_one_line_and_defer_nothing(
    manage: Manage, env: dict[str, str], engine: sa.Engine, args: list[str], fragment: str
) -> None:
    result = manage(*args, env=env)

    assert result.returncode != 0
    assert_one_line_error(result.stderr, fragment)
    assert job_count(engine) == 0


def test_queueing_lock_conflict_is_reported(manage: Manage, env: dict[str, str]) -> None:
    args = ["defer", "tests.add", "--json", '{"x": 1, "y": 2}', "--queueing-lock", "k"]
    assert manage(*args, env=env).returncode == 0

    second = manage(*args, env=env)

    assert second.returncode == 1
    assert_one_line_error(second.stderr, "queueing lock 'k' is already waiting")


def test_list_filters_and_queues_counts(manage: Manage, env: dict[str, str]) -> None:
    for args in ('{"x": 1, "y": 1}', '{"x": 2, "y": 2}'):
        assert manage("defer", "tests.add", "--json", args, env=env).returncode == 0
    assert manage("defer", "tests.mail_like", "--json", '{"name": "n"}', env=env).returncode == 0

    listed = manage("jobs", "list", "--queue", "default", "--status", "todo", env=env)
    queues = manage("queues", env=env)

    assert listed.returncode == 0, listed.stderr
    assert len(listed.stdout.splitlines()) == 3, "header + the two default-queue jobs"
    assert "tests.mail_like" not in listed.stdout
    rows = {line.split()[0]: line.split() for line in queues.stdout.splitlines()[1:]}
    assert rows["default"][1] == "2"
    assert rows["mail"][1] == "1"
    assert rows["dataset"][1] == "0", "every known queue is listed, even when empty"


def test_cancel_a_waiting_job_then_retry_is_refused(manage: Manage, env: dict[str, str]) -> None:
    job_id = manage("defer", "tests.add", "--json", '{"x": 1, "y": 1}', env=env).stdout.strip()

    cancelled = manage("jobs", "cancel", job_id, env=env)
    again = manage("jobs", "cancel", job_id, env=env)
    retried = manage("jobs", "retry", job_id, env=env)

    assert cancelled.stdout.strip() == f"job {job_id} cancelled"
    assert_one_line_error(again.stderr, f"job {job_id} is cancelled")
    assert_one_line_error(retried.stderr, "only failed jobs can be retried")
    shown = manage("jobs", "show", job_id, env=env)
    assert "REVOKED" in shown.stdout


def test_retry_puts_a_failed_job_back_in_the_queue(
    manage: Manage, env: dict[str, str], engine: sa.Engine
) -> None:
    job_id = manage("defer", "tests.broken", "--json", '{"reason": "x"}', env=env).stdout.strip()
    with engine.begin() as connection:
        connection.execute(
            sa.text("UPDATE procrastinate_jobs SET status = 'failed', attempts = 1 WHERE id = :i"),
            {"i": int(job_id)},
        )

    retried = manage("jobs", "retry", job_id, env=env)

    assert retried.returncode == 0, retried.stderr
    with engine.connect() as connection:
        status = connection.execute(
            sa.text("SELECT status FROM procrastinate_jobs WHERE id = :i"), {"i": int(job_id)}
        ).scalar_one()
    assert status == "todo"


def test_a_cancelled_mail_jobs_code_is_gone_and_show_never_prints_it(
    manage: Manage, env: dict[str, str], engine: sa.Engine
) -> None:
    deferred = manage(
        "defer", "mail.reset_password", "--json",
        '{"language": "en-US", "to": "v@x.test", "code": "271828"}', "--schedule-in", "3600",
        env=env,
    )  # fmt: skip
    assert deferred.returncode == 0, deferred.stderr
    job_id = deferred.stdout.strip()

    waiting = manage("jobs", "show", job_id, env=env)
    assert waiting.returncode == 0, waiting.stderr
    assert "271828" not in waiting.stdout, "masked while the job waits"
    assert '"code": "***"' in waiting.stdout

    cancelled = manage("jobs", "cancel", job_id, env=env)
    assert cancelled.returncode == 0, cancelled.stderr
    with engine.connect() as connection:
        args = connection.execute(
            sa.text("SELECT status, args FROM procrastinate_jobs WHERE id = :id"), {"id": job_id}
        ).one()
        in_tables = connection.execute(
            sa.text("SELECT count(*) FROM procrastinate_jobs WHERE args::text LIKE '%271828%'")
        ).scalar_one()
    assert args.status == "cancelled"
    assert args.args["code"] == "***"
    assert in_tables == 0
    assert "271828" not in manage("jobs", "show", job_id, env=env).stdout
