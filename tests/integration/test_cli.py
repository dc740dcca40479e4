"""The command line against a real database, run as a subprocess like a user would."""

from __future__ import annotations

import re

import pytest

from tests.conftest import Manage


def assert_one_line_error(stderr: str, *fragments: str) -> None:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert re.match(r"manage\.py( \w+)*: error: ", lines[0]), lines[0]
    assert "Traceback" not in stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_migrate_twice_then_check_succeeds(manage: Manage, empty_database_url: str) -> None:
    env = {"DATABASE_URL": empty_database_url}

    first = manage("migrate", env=env)
    second = manage("migrate", env=env)
    check = manage("check", env=env)

    assert first.returncode == 0, first.stderr
    assert "schema migrated from empty to" in first.stdout
    assert second.returncode == 0, second.stderr
    assert "nothing to do" in second.stdout
    assert check.returncode == 0, check.stderr
    assert "schema    ok    at head" in check.stdout
    assert "pgvector  ok" in check.stdout


def test_check_fails_on_an_unmigrated_database(manage: Manage, empty_database_url: str) -> None:
    result = manage("check", env={"DATABASE_URL": empty_database_url})

    assert result.returncode == 1
    assert_one_line_error(result.stderr, "schema at empty", "manage.py migrate")


def test_worker_refuses_to_start_on_an_unmigrated_database(
    manage: Manage, empty_database_url: str
) -> None:
    result = manage("worker", env={"DATABASE_URL": empty_database_url})

    assert result.returncode == 1
    assert_one_line_error(result.stderr, "run `manage.py migrate` first")


@pytest.mark.parametrize("command", ["check", "migrate", "worker"])
def test_unreachable_database_is_one_line_without_the_password(
    manage: Manage, command: str
) -> None:
    url = "postgresql://dify:hunter2@127.0.0.1:1/dify"

    result = manage(command, env={"DATABASE_URL": url})

    assert result.returncode == 1
    assert_one_line_error(
        result.stderr, "cannot reach the database at postgresql://dify:***@127.0.0.1:1/dify"
    )
    assert "hunter2" not in result.stderr


def test_wrong_database_url_is_a_configuration_error(manage: Manage) -> None:
    result = manage("check", env={"DATABASE_URL": "mysql://root:hunter2@db/dify"})

    assert result.returncode == 2
    assert_one_line_error(result.stderr, "DATABASE_URL: unsupported scheme 'mysql'")
    assert "hunter2" not in result.stderr


def test_invalid_setting_stops_any_command_at_start_up(manage: Manage) -> None:
    result = manage("db", "url", env={"SMTP_PORT": "smtp"})

    assert result.returncode == 2
    assert_one_line_error(result.stderr, "SMTP_PORT")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        (["worker", "--queues", "dataset,nope"], "unknown queue(s) nope"),
        (["worker", "--concurrency", "dataset=zero"], "got 'dataset=zero'"),
        (["db"], "required: ACTION"),
    ],
)
def test_usage_errors_are_one_line(manage: Manage, args: list[str], fragment: str) -> None:
    result = manage(*args, env={"DATABASE_URL": "postgresql://u@127.0.0.1:1/x"})

    assert result.returncode == 2
    assert_one_line_error(result.stderr, fragment)


def test_db_url_prints_the_external_url_redacted(manage: Manage) -> None:
    url = "postgresql://dify:hunter2@db.internal:5433/dify"

    hidden = manage("db", "url", env={"DATABASE_URL": url})
    shown = manage("db", "url", "--show-password", env={"DATABASE_URL": url})

    assert hidden.stdout.strip() == "postgresql://dify:***@db.internal:5433/dify"
    assert shown.stdout.strip() == url


def test_embedded_server_commands_refuse_when_database_url_is_set(manage: Manage) -> None:
    result = manage("db", "start", env={"DATABASE_URL": "postgresql://u@db/x"})

    assert result.returncode == 2
    assert_one_line_error(result.stderr, "DATABASE_URL is set")
