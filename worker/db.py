"""Database URLs and engines.

One URL reaches three clients: libpq/psycopg (procrastinate's connector, raw admin connections),
SQLAlchemy (``postgresql+psycopg://``) and Alembic (through SQLAlchemy). This module converts
between them and hides passwords for display.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

_SQLALCHEMY_DRIVER = "postgresql+psycopg"


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


def make_engine(database_url: str, *, connect_timeout: int = 10, **kwargs: Any) -> sa.Engine:
    """A pooled SQLAlchemy engine on psycopg 3 that checks connections before use.

    Parameters
    ----------
    database_url:
        A ``postgresql://`` URL.
    connect_timeout:
        Seconds libpq waits for the server before failing.
    kwargs:
        Passed to :func:`sqlalchemy.create_engine` (``pool_size``, ``echo``, ...).
    """
    connect_args = {"connect_timeout": connect_timeout, **kwargs.pop("connect_args", {})}
    return sa.create_engine(
        sqlalchemy_url(database_url),
        pool_pre_ping=True,
        connect_args=connect_args,
        **kwargs,
    )
