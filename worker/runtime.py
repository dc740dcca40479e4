"""Composition root: builds the process's resources from the database URL and settings.

Nothing here runs at import. ``manage.py`` commands enter :func:`database_url` to get the URL of
the database in use: ``DATABASE_URL`` when set, else the embedded server, started on entry and
stopped on exit when this process was its last user. :func:`setup` binds the task layer (the
procrastinate App and :func:`worker.db.session_scope`) to that database: the worker calls it, and
so does app code that defers jobs, once at start-up.
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
from worker.config import Settings
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
    database_url: str,
    *,
    pool_size: int = ENGINE_POOL_SIZE,
    procrastinate_pool_size: int = 10,
    connect_timeout: int = 10,
    worker: bool = False,
    settings: Settings | None = None,
) -> Runtime:
    """Bind the task layer to ``database_url``: sessions, deferring, results.

    Parameters
    ----------
    database_url:
        A ``postgresql://`` URL.
    pool_size:
        Connections of the SQLAlchemy engine behind ``session_scope`` (tasks and defers).
    procrastinate_pool_size:
        Connections of procrastinate's pool (the worker's fetch/finish loop).
    connect_timeout:
        Seconds libpq waits for the server.
    worker:
        This process runs a worker (which opens procrastinate's async pool itself); otherwise
        procrastinate's sync pool is opened for its own sync API.
    settings:
        Configuration of the adapters (storage, embeddings, Notion, crawling); defaults apply
        when omitted.
    """
    global _current
    teardown()
    engine = db.make_engine(
        database_url,
        connect_timeout=connect_timeout,
        pool_size=pool_size,
        max_overflow=2,
        pool_pre_ping=not worker,
    )
    db.bind(engine)
    app_module.bind(database_url, pool_max_size=procrastinate_pool_size, open_sync_pool=not worker)
    _current = Runtime(database_url=database_url, engine=engine, settings=settings or Settings())
    return _current


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
