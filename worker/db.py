"""Database URLs, engines and the session scope that tasks and app code share.

One URL reaches three clients: libpq/psycopg (procrastinate's connector, raw admin connections),
SQLAlchemy (``postgresql+psycopg://``) and Alembic (through SQLAlchemy). This module converts
between them and hides passwords for display.

:func:`session_scope` is the one way to get a ``Session``: the outermost scope begins a
transaction and commits it on exit (rolls back on an exception); nested scopes, and jobs deferred
inside them, join that same transaction.
"""

from __future__ import annotations

import contextlib
import contextvars
import select
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import sqlalchemy as sa
from sqlalchemy import orm

_SQLALCHEMY_DRIVER = "postgresql+psycopg"

_sessionmaker: orm.sessionmaker[orm.Session] | None = None
#: The session that ``session_scope`` joins here: a session, or a function that provides it on
#: first use (a job's unit of work opens its session only if the task uses the database).
_current_session: contextvars.ContextVar[orm.Session | Callable[[], orm.Session] | None] = (
    contextvars.ContextVar("current_session", default=None)
)


class NotSetUp(RuntimeError):
    """The task layer was used before ``worker.runtime.setup()`` bound it to a database."""

    def __init__(self) -> None:
        super().__init__(
            "the task layer is not bound to a database: call "
            "worker.runtime.setup(database_url) at start-up"
        )


def sqlalchemy_url(database_url: str) -> sa.URL:
    """The SQLAlchemy URL (psycopg 3 driver) for a ``postgresql://`` URL."""
    return sa.make_url(database_url).set(drivername=_SQLALCHEMY_DRIVER)


def libpq_url(database_url: str) -> str:
    """The plain ``postgresql://`` URL that libpq and psycopg accept."""
    url = sa.make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def redacted(database_url: str) -> str:
    """The URL with its password replaced by ``***``, for logs and messages."""
    try:
        url = sa.make_url(database_url)
    except sa.exc.ArgumentError:
        return "<unparseable URL>"
    return url.set(drivername="postgresql").render_as_string(hide_password=True)


#: A pooled connection unused for longer than this (seconds) is tested before it is handed out.
PING_IDLE_AFTER = 2.0


def make_engine(
    database_url: str, *, connect_timeout: int = 10, pool_pre_ping: bool = True, **kwargs: Any
) -> sa.Engine:
    """A pooled SQLAlchemy engine on psycopg 3 that tests suspect connections before use.

    Parameters
    ----------
    database_url:
        A ``postgresql://`` URL.
    connect_timeout:
        Seconds libpq waits for the server before failing.
    pool_pre_ping:
        Test a connection taken from the pool (one round trip), and replace it if the server
        does not answer, when it is suspect: its socket has something to read while it sat
        idle (a server that shut down or restarted says so to every client, or its socket was
        closed), or it sat unused for over :data:`PING_IDLE_AFTER` s. A connection in steady
        use costs one ``poll()`` system call instead of a round trip: testing every checkout
        doubled the round trips of a ``.delay()``.
    kwargs:
        Passed to :func:`sqlalchemy.create_engine` (``pool_size``, ``echo``, ...).
    """
    connect_args = {"connect_timeout": connect_timeout, **kwargs.pop("connect_args", {})}
    engine = sa.create_engine(sqlalchemy_url(database_url), connect_args=connect_args, **kwargs)
    if pool_pre_ping:
        sa.event.listen(engine, "checkin", _note_checkin)
        sa.event.listen(engine, "checkout", _test_if_suspect)
    return engine


def _note_checkin(dbapi_connection: Any, record: Any) -> None:
    record.info["checked_in_at"] = time.monotonic()


def _test_if_suspect(dbapi_connection: Any, record: Any, proxy: Any) -> None:
    """Ping a suspect connection; raising ``DisconnectionError`` makes the pool replace it and
    try again (SQLAlchemy's pessimistic disconnect handling)."""
    checked_in_at = record.info.get("checked_in_at")
    if checked_in_at is None:
        return  # a connection just opened
    if not _suspect(dbapi_connection, idle_since=checked_in_at):
        return
    try:
        _ping(dbapi_connection)
    except psycopg.Error as exc:
        raise sa.exc.DisconnectionError(str(exc)) from exc


def _suspect(dbapi_connection: Any, *, idle_since: float) -> bool:
    """Whether an idle connection must answer a ping before use: it sat unused for
    :data:`PING_IDLE_AFTER` s, or its socket has something to read."""
    return time.monotonic() - idle_since >= PING_IDLE_AFTER or _has_input(dbapi_connection)


def _ping(dbapi_connection: Any) -> None:
    """One round trip; raises ``psycopg.Error`` if the server does not answer."""
    try:
        dbapi_connection.execute("SELECT 1")
    finally:
        if not dbapi_connection.closed and dbapi_connection.info.transaction_status != 0:
            dbapi_connection.rollback()


def _has_input(dbapi_connection: Any) -> bool:
    """Whether an idle connection's socket has something to read (nothing is expected: a
    server's goodbye, or the end of the stream); no round trip."""
    if dbapi_connection.closed:
        return True
    try:
        socket = dbapi_connection.pgconn.socket
    except psycopg.Error:
        return True
    poller = select.poll()
    poller.register(socket, select.POLLIN)
    return bool(poller.poll(0))


def bind(engine: sa.Engine | None) -> None:
    """Make :func:`session_scope` open sessions on ``engine`` (``None`` unbinds)."""
    global _sessionmaker
    if engine is None:
        _sessionmaker = None
        return
    _sessionmaker = orm.sessionmaker(engine, expire_on_commit=False)
    sa.event.listen(_sessionmaker, "after_begin", _note_database_use)


def _maker() -> orm.sessionmaker[orm.Session]:
    """The session factory ``bind`` set up; raises :class:`NotSetUp` before that."""
    if _sessionmaker is None:
        raise NotSetUp()
    return _sessionmaker


def _note_database_use(session: orm.Session, transaction: Any, connection: Any) -> None:
    session.info["used_database"] = True


def used_database(session: orm.Session) -> bool:
    """Whether ``session`` has begun a transaction on the database (read or written)."""
    return bool(session.info.get("used_database"))


@contextlib.contextmanager
def autocommit_connection() -> Iterator[sa.Connection]:
    """A pooled connection in autocommit mode: each statement is its own transaction.

    Raises
    ------
    NotSetUp
        ``worker.runtime.setup()`` has not bound a database yet.
    """
    with _maker().kw["bind"].connect() as connection:
        yield connection.execution_options(isolation_level="AUTOCOMMIT")


class _Kept:
    """The connection a task thread keeps between the jobs it runs."""

    def __init__(self) -> None:
        self.connection: sa.Connection | None = None
        self.lent = False  # a job's session is bound to it now
        self.idle_since = 0.0


class _ThreadKept(threading.local):
    kept: _Kept | None = None


_thread = _ThreadKept()
#: The threads' records that hold a connection now, to give them back when the worker stops.
_every_kept: set[_Kept] = set()
_every_kept_lock = threading.Lock()


def keep_connections() -> None:
    """Let this thread keep one connection between the jobs it runs (the initializer of a
    worker's task threads): a job's session (:func:`job_session`) is bound to it instead of
    checking a connection out of the pool and back in for each job. Before each job it is
    tested as a pooled one would be (a ``poll()``; a ping when suspect), and replaced if dead.
    Threads keep at most the pool's size less one (the rest of the pool serves everything
    else); a thread past that takes a pooled connection for each job as before.
    """
    if _thread.kept is None:
        _thread.kept = _Kept()


def job_session() -> orm.Session:
    """A job's session, not in a transaction yet (it begins one at first use): on the
    connection this thread keeps (:func:`keep_connections`) when no other job's session uses
    it, else on a pooled connection. Close it with :func:`end_job_session`.

    Raises
    ------
    NotSetUp
        ``worker.runtime.setup()`` has not bound a database yet.
    """
    maker = _maker()
    kept = _thread.kept
    if kept is None or kept.lent:
        return maker()
    if kept.connection is not None and not _still_usable(kept.connection, kept.idle_since):
        _give_back(kept)  # the pool drops it if it was invalidated
    if kept.connection is None:
        engine: sa.Engine = maker.kw["bind"]
        with _every_kept_lock:
            if len(_every_kept) >= getattr(engine.pool, "size", lambda: 1)() - 1:
                return maker()  # the pool is for everything else too
            _every_kept.add(kept)
        try:
            kept.connection = engine.connect()
        finally:
            if kept.connection is None:
                with _every_kept_lock:
                    _every_kept.discard(kept)
    kept.lent = True
    return maker(bind=kept.connection)


def end_job_session(session: orm.Session) -> None:
    """Close a session of :func:`job_session` (what it did not commit is rolled back); the
    thread keeps its connection for its next job."""
    try:
        session.close()
    finally:
        kept = _thread.kept
        if kept is not None and kept.lent and session.bind is kept.connection:
            kept.lent = False
            kept.idle_since = time.monotonic()


def _still_usable(connection: sa.Connection, idle_since: float) -> bool:
    if connection.closed or connection.invalidated or connection.in_transaction():
        return False
    dbapi_connection = connection.connection.dbapi_connection
    if not _suspect(dbapi_connection, idle_since=idle_since):
        return True
    try:
        _ping(dbapi_connection)
    except psycopg.Error:
        connection.invalidate()
        return False
    return True


def give_back_kept_connections() -> None:
    """Return to the pool the connections task threads keep (the worker stops; call it before
    the engine is disposed). One a running job still uses is left to it."""
    with _every_kept_lock:
        every = list(_every_kept)
    for kept in every:
        if not kept.lent:
            _give_back(kept)


def _give_back(kept: _Kept) -> None:
    connection, kept.connection = kept.connection, None
    with _every_kept_lock:
        _every_kept.discard(kept)
    if connection is not None:
        connection.close()


def new_session() -> orm.Session:
    """A session of its own, not in a transaction yet (it begins one at first use).

    Raises
    ------
    NotSetUp
        ``worker.runtime.setup()`` has not bound a database yet.
    """
    return _maker()()


@contextlib.contextmanager
def joined(session: orm.Session | Callable[[], orm.Session]) -> Iterator[None]:
    """Make ``session`` (or the session a function provides on first use) the one that
    :func:`session_scope` joins in this context."""
    token = _current_session.set(session)
    try:
        yield
    finally:
        _current_session.reset(token)


@contextlib.contextmanager
def transaction() -> Iterator[sa.Connection]:
    """A pooled connection in a transaction of its own, committed on exit (rolled back on an
    exception).

    Raises
    ------
    NotSetUp
        ``worker.runtime.setup()`` has not bound a database yet.
    """
    with _maker().kw["bind"].begin() as connection:
        yield connection


def current_session() -> orm.Session | None:
    """The session of the innermost open :func:`session_scope` in this context, if any."""
    current = _current_session.get()
    return current() if callable(current) else current


@contextlib.contextmanager
def session_scope(*, new: bool = False) -> Iterator[orm.Session]:
    """A session in a transaction: joined if one is open here, else begun and committed on exit.

    Parameters
    ----------
    new:
        Always begin a separate transaction (for short progress commits inside a long task).

    Raises
    ------
    NotSetUp
        ``worker.runtime.setup()`` has not bound a database yet.
    """
    outer = current_session()
    if outer is not None and not new:
        yield outer
        return
    with _maker()() as session, session.begin():
        token = _current_session.set(session)
        try:
            yield session
        finally:
            _current_session.reset(token)


def driver_connection(session: orm.Session) -> Any:
    """The psycopg connection under ``session``'s transaction (begun if needed)."""
    return session.connection().connection.driver_connection
