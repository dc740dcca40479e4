"""Composition root: builds the process's resources from the database URL and settings.

Nothing here runs at import. ``manage.py`` commands enter :func:`database_url` to get the URL of
the database in use: ``DATABASE_URL`` when set, else the embedded server, started on entry and
stopped on exit when this process was its last user. :func:`setup` binds the task layer (the
procrastinate App and :func:`worker.db.session_scope`) to that database: the worker calls it, and
so does app code that defers jobs, searches or uploads, once at start-up. Unless given settings,
it reads the environment as the worker does, so that both store files in the same place and embed
with the same model.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import sqlalchemy as sa

from worker import app as app_module
from worker import db
from worker.config import ConfigError, Settings
from worker.embedded import EmbeddedPostgres

if TYPE_CHECKING:
    from worker.domain.mail import MailService
    from worker.domain.pipeline import Pipeline

#: SQLAlchemy pool size when setup() is not told otherwise.
ENGINE_POOL_SIZE = 5


@contextlib.contextmanager
def database_url(settings: Settings) -> Iterator[str]:
    """Yield the libpq URL of the database to use, starting the embedded server if needed."""
    if settings.database_url is not None:
        yield db.libpq_url(settings.database_url)
        return
    with EmbeddedPostgres(settings.data_dir).attached() as url:
        yield url


@dataclass(kw_only=True)
class Runtime:
    """What :func:`setup` built; :func:`teardown` releases it. Adapters are built on first use."""

    database_url: str
    engine: sa.Engine
    settings: Settings = field(default_factory=Settings)

    @property
    def database(self) -> str:
        """Which database this is, for logs: ``host:port/dbname``, or the embedded server's
        data directory (never the password)."""
        url = sa.make_url(self.database_url)
        host = str(url.host or url.query.get("host") or "localhost")
        data_dir = self.settings.data_dir.resolve()
        if self.settings.embedded_database and host.startswith(str(data_dir)):
            return f"the embedded PostgreSQL in {data_dir}"
        port = f":{url.port}" if url.port else ""
        return f"{host}{port}/{url.database or ''}"

    @functools.cached_property
    def pipeline(self) -> Pipeline:
        """The indexing pipeline's adapters (storage, embedder, vector and keyword stores)."""
        from worker.domain.adapters import build_pipeline

        return build_pipeline(self.settings)

    @functools.cached_property
    def mail(self) -> MailService:
        """The mail backend, sender and templates."""
        from worker.domain.adapters import build_mail

        return build_mail(self.settings)


_current: Runtime | None = None


def setup(
    database_url: str | None = None,
    *,
    settings: Settings | None = None,
    pool_size: int = ENGINE_POOL_SIZE,
    procrastinate_pool_size: int = 10,
    connect_timeout: int | None = None,
    worker: bool = False,
    open_sync_pool: bool | None = None,
) -> Runtime:
    """Bind the task layer to a database: sessions, deferring, results, search and uploads.

    Parameters
    ----------
    database_url:
        A ``postgresql://`` URL; by default ``DATABASE_URL`` of the settings, else the URL of the
        embedded server when it runs (``manage.py db start``).
    settings:
        Configuration of the adapters (storage, embeddings, Notion, crawling, mail); by default
        read from the environment, as ``manage.py`` does, so that app code stores uploads where
        the worker reads them and embeds queries with the model that built the index.
    pool_size:
        Connections of the SQLAlchemy engine behind ``session_scope`` (tasks and defers).
    procrastinate_pool_size:
        Connections of procrastinate's pool (the worker's fetch/finish loop).
    connect_timeout:
        Seconds libpq waits for the server (default ``WORKER_DB_CONNECT_TIMEOUT``).
    worker:
        This process runs a worker (which opens procrastinate's async pool itself).
    open_sync_pool:
        Open procrastinate's sync pool, for its own sync API (``task.defer()``,
        ``app.job_manager``); by default when not a worker. It connects on first use only.

    Raises
    ------
    worker.config.ConfigError
        The environment's settings are invalid, or no database is given, set or running.
    """
    global _current
    teardown()
    settings = settings if settings is not None else Settings.from_process_env()
    url = database_url or _configured_url(settings)
    timeout = settings.db_connect_timeout if connect_timeout is None else connect_timeout
    engine = db.make_engine(
        url,
        connect_timeout=timeout,
        pool_size=pool_size,
        max_overflow=2,
        # a connection is tested only when suspect (its socket has input, or it idled for
        # long): free in steady use, and a job's first statement after a restart succeeds
        pool_pre_ping=True,
    )
    db.bind(engine)
    app_module.bind(
        url,
        pool_max_size=procrastinate_pool_size,
        open_sync_pool=not worker if open_sync_pool is None else open_sync_pool,
        connect_timeout=timeout,
    )
    _current = Runtime(database_url=url, engine=engine, settings=settings)
    return _current


def _configured_url(settings: Settings) -> str:
    if settings.database_url is not None:
        return db.libpq_url(settings.database_url)
    status = EmbeddedPostgres(settings.data_dir).status()
    if status.running and status.url is not None:
        return status.url
    raise ConfigError(
        "no database to set up: pass runtime.setup(database_url), set DATABASE_URL, or start "
        f"the embedded server of WORKER_DATA_DIR={settings.data_dir} (`manage.py db start`)"
    )


def teardown() -> None:
    """Unbind and close what :func:`setup` built (no-op when nothing is set up)."""
    global _current
    if _current is None:
        return
    app_module.bind(None)
    db.bind(None)
    _current.engine.dispose()
    _current = None


def current() -> Runtime:
    """The runtime :func:`setup` built.

    Raises
    ------
    worker.db.NotSetUp
        Nothing is set up.
    """
    if _current is None:
        raise db.NotSetUp()
    return _current
