"""What operators type at manage.py: Dify's task names, ``tasks``, refusals of bad input as one
line with exit 2, unreachable servers within WORKER_DB_CONNECT_TIMEOUT, secrets out of the log,
a closed pipe. Every case runs the real command in a subprocess."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import REPO_ROOT, Manage
from tests.integration.test_cli import assert_one_line_error
from tests.integration.test_job_cli import job_count
from worker.app import app
from worker.jobs import CeleryTask, catalog

LOGIN = {"language": "en-US", "to": "v@x.test", "code": "CODE-1"}


@pytest.fixture
def env(database_url: str) -> dict[str, str]:
    return {"DATABASE_URL": database_url, "WORKER_IMPORT_PATHS": "tests.sample_tasks"}


def jobs(engine: sa.Engine) -> list[sa.Row[tuple[str, dict[str, object]]]]:
    with engine.connect() as connection:
        query = "SELECT task_name, args FROM procrastinate_jobs ORDER BY id"
        return list(connection.execute(sa.text(query)).all())


def test_dify_function_names_and_registered_names_defer_the_same_task(
    manage: Manage, env: dict[str, str], engine: sa.Engine
) -> None:
    inner = {"to": ["a@x.test"], "subject": "s", "body": "b", "substitutions": {}}
    retry = {"dataset_id": "d", "document_ids": ["x"]}  # the seed era's call, without user_id
    for name, arguments in (
        ("send_email_code_login_mail_task", LOGIN),
        ("mail.email_code_login", LOGIN),
        ("send_enterprise_email_task", inner),
        ("retry_document_indexing_task", retry),
    ):
        deferred = manage("defer", name, "--json", json.dumps(arguments), env=env)
        assert deferred.returncode == 0, deferred.stderr

    assert [row.task_name for row in jobs(engine)] == [
        "mail.email_code_login",
        "mail.email_code_login",
        "mail.inner_email",
        "indexing.retry_document_indexing",
    ]


def test_tasks_lists_every_task_with_its_names_queue_arguments_and_retry(
    manage: Manage, env: dict[str, str]
) -> None:
    result = manage("tasks", env=env)

    assert result.returncode == 0, result.stderr
    blocks = {block.splitlines()[0]: block for block in _blocks(result)}
    catalog.import_tasks()
    ours = [t for t in app.tasks.values() if isinstance(t, CeleryTask)]
    expected = {t.name for t in ours if t.run.__module__.startswith("worker.")} | {"tests.add"}
    assert expected <= set(blocks)
    assert not [name for name in blocks if name.startswith("procrastinate")]
    login = blocks["mail.email_code_login"]
    assert "also       send_email_code_login_mail_task" in login
    assert "queue      mail" in login
    assert "arguments  language: str, to: str, code: str" in login
    assert "retry      5 retries, after 30 s x2 (max 1800 s)" in login
    assert "secret     code" in login
    assert "send_enterprise_email_task" in blocks["mail.inner_email"]
    assert "user_id: str | None = None" in blocks["indexing.retry_document_indexing"]
    assert "retry      no retry" in blocks["tests.add"]
    assert result.stdout.strip().endswith(f"{len(blocks)} tasks")


def _blocks(result: subprocess.CompletedProcess[str]) -> list[str]:
    blocks: list[str] = []
    for line in result.stdout.splitlines()[:-1]:
        if line.startswith(" "):
            blocks[-1] += "\n" + line
        else:
            blocks.append(line)
    return blocks


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["defer", "mail.reset_password", "--json", '{"code": NaN}'], ["NaN is not a JSON"]),
        (["defer", "tests.add", "--priority", "99999999999"], ["--priority", "-1000..1000"]),
        (["defer", "tests.add", "--lock", "x" * 120_000], ["--lock", "at most 512"]),
        (["defer", "tests.add", "--schedule-in", "nan"], ["--schedule-in", "not a number"]),
        (["defer", "tests.add", "--schedule-in", "inf"], ["--schedule-in", "0..31622400"]),
        (["defer", "tests.add", "--schedule-in", "-1"], ["--schedule-in"]),
        (["jobs", "list", "--limit", "-1"], ["--limit", "1..10000"]),
        (["jobs", "list", "--limit", "0"], ["--limit", "1..10000"]),
        (["jobs", "show", "99999999999999999999"], ["job ids are 1.."]),
        (
            [
                "defer",
                "send_reset_password_mail_task_when_account_not_exist",
                "--json",
                '{"language": "en", "to": "a@x.test", "is_allow_register": "yes"}',
            ],
            ["'is_allow_register': input should be a valid boolean (got 'yes')"],
        ),
        (
            [
                "defer",
                "send_email_code_login_mail_task",
                "--json",
                '{"language": "en", "to": ["a@x.test"], "code": "314159"}',
            ],
            ["'to': input should be a valid string"],
        ),
        (
            [
                "defer",
                "send_email_code_login_mail_task",
                "--json",
                '{"language": "en", "to": "a@x.test", "code": 314159}',
            ],
            ["'code': input should be a valid string"],
        ),
        (
            [
                "defer",
                "document_indexing_update_task",
                "--json",
                json.dumps({"dataset_id": "d", "document_id": "x" * 120_000}),
            ],
            ["lock is 120009 characters long"],
        ),
        (["defer", "no_such_task"], ["unknown task 'no_such_task'", "manage.py tasks"]),
    ],
)
def test_bad_input_is_refused_in_one_line_with_exit_2_and_defers_nothing(
    manage: Manage, env: dict[str, str], engine: sa.Engine, args: list[str], fragments: list[str]
) -> None:
    result = manage(*args, env=env)

    assert result.returncode == 2, result.stderr
    assert_one_line_error(result.stderr, *fragments)
    assert "unexpected" not in result.stderr
    assert "314159" not in result.stderr, "a secret argument's value is never echoed"
    assert job_count(engine) == 0


def test_a_data_dir_that_is_a_file_is_a_configuration_error(manage: Manage, tmp_path: Path) -> None:
    a_file = tmp_path / "data"
    a_file.write_text("not a directory")

    for args in (["jobs", "list"], ["db", "status"], ["check"]):
        result = manage(*args, env={"WORKER_DATA_DIR": str(a_file)})
        assert result.returncode == 2, result.stderr
        assert_one_line_error(result.stderr, "WORKER_DATA_DIR", "is a file, not a directory")


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP port that accepts connections and never answers: libpq waits for its reply until
    its connect timeout."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(64)
        yield int(server.getsockname()[1])


@pytest.mark.parametrize(
    "args",
    [
        ["jobs", "list"],
        ["jobs", "show", "1"],
        ["jobs", "retry", "1"],
        ["jobs", "cancel", "1"],
        ["queues"],
        ["defer", "send_email_code_login_mail_task", "--json", json.dumps(LOGIN)],
        ["documents", "recover"],
        ["check"],
        ["migrate"],
        ["worker"],
    ],
)
def test_a_server_that_does_not_answer_fails_every_command_within_the_timeout(
    manage: Manage, silent_server: int, args: list[str]
) -> None:
    url = f"postgresql://dify:hunter2@127.0.0.1:{silent_server}/dify"
    started = time.monotonic()

    result = manage(
        *args,
        env={"DATABASE_URL": url, "WORKER_DB_CONNECT_TIMEOUT": "2", "WORKER_IMPORT_PATHS": ""},
    )

    elapsed = time.monotonic() - started
    assert result.returncode == 1
    assert_one_line_error(result.stderr, "cannot reach the database at postgresql://dify:***@")
    assert "hunter2" not in result.stderr
    assert elapsed < 2 + 8, f"{args} took {elapsed:.1f} s"  # the timeout, plus start-up


def test_a_secret_given_to_defer_stays_out_of_its_log(
    manage: Manage, env: dict[str, str], engine: sa.Engine
) -> None:
    arguments = {"language": "en-US", "to": "v@x.test", "code": "CODE-1"}

    result = manage(
        "defer", "mail.reset_password", "--json", json.dumps(arguments),
        env={**env, "LOG_LEVEL": "DEBUG"},
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    assert "About to defer" in result.stderr and "Deferred 1 job" in result.stderr
    assert "CODE-1" not in result.stderr + result.stdout
    assert "code': '***'" in result.stderr
    assert jobs(engine)[0].args["code"] == "CODE-1", "the job itself keeps it until it ends"


def test_a_long_argument_is_cut_in_the_log(manage: Manage, env: dict[str, str]) -> None:
    body = "b" * 100_000
    arguments = {"to": ["a@x.test"], "subject": "s", "body": body, "substitutions": {}}

    result = manage("defer", "mail.inner_email", "--json", json.dumps(arguments), env=env)

    assert result.returncode == 0, result.stderr
    assert len(result.stderr) < 5_000
    assert "more characters" in result.stderr


def test_output_to_a_closed_pipe_stops_quietly(env: dict[str, str]) -> None:
    process = subprocess.Popen(
        [sys.executable, str(REPO_ROOT / "manage.py"), "tasks"],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=REPO_ROOT,
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # the reader is gone before the first line (`| head -0`)
    with process.stderr:
        stderr = process.stderr.read().decode()
    code = process.wait(timeout=60)

    assert code == 141, stderr
    assert stderr == ""
