"""The dashboard's own connections: a small pool, short transactions, named queries."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from functools import cache
from importlib import resources
from typing import Any, LiteralString

import sqlalchemy as sa
from sqlalchemy import orm

from worker import db
from worker.domain.sql import parse

#: Connections of the dashboard's pool (one per serving thread, and one spare).
POOL_SIZE = 4
#: Longest a dashboard statement may run, in milliseconds: a page never holds the database.
STATEMENT_TIMEOUT_MS = 5000


@cache
def queries() -> dict[str, LiteralString]:
    """The named blocks of ``queries.sql``."""
    text = resources.files(__package__).joinpath("queries.sql").read_text(encoding="utf-8")
    return parse(text)  # type: ignore[return-value,unused-ignore]


def q(name: str) -> sa.TextClause:
    """Named query ``name`` as a SQLAlchemy text clause."""
    return sa.text(queries()[name])


class Store:
    """Sessions on the dashboard's engine: read-only snapshots for pages, short writes for
    actions and metric folds."""

    def __init__(self, database_url: str, *, connect_timeout: int = 10) -> None:
        self.engine = db.make_engine(
            database_url,
            connect_timeout=connect_timeout,
            pool_size=POOL_SIZE,
            max_overflow=2,
            connect_args={
                "options": f"-c statement_timeout={STATEMENT_TIMEOUT_MS}",
                "application_name": "pg-task-layer dashboard",
            },
        )
        self._sessions = orm.sessionmaker(self.engine, expire_on_commit=False)

    @contextlib.contextmanager
    def read(self) -> Iterator[orm.Session]:
        """A session in a read-only REPEATABLE READ transaction: one snapshot for a page."""
        with self._sessions() as session:
            session.connection(  # begins the transaction; closing the session ends it
                execution_options={
                    "isolation_level": "REPEATABLE READ",
                    "postgresql_readonly": True,
                }
            )
            yield session

    @contextlib.contextmanager
    def write(self) -> Iterator[orm.Session]:
        """A session in a transaction, committed on exit (rolled back on an exception)."""
        with self._sessions() as session, session.begin():
            yield session

    def scalar(self, name: str, **params: Any) -> Any:
        """The one value of named query ``name``, in a transaction of its own."""
        with self.read() as session:
            return session.execute(q(name), params).scalar()

    def close(self) -> None:
        """Close every connection of the pool."""
        self.engine.dispose()
