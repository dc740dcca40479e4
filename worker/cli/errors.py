"""Errors a command reports as one line, and how driver errors become such a line."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import psycopg
import sqlalchemy as sa

from worker import db


class CommandError(Exception):
    """A command failed in a way the user can act on; the message says how."""

    def __init__(self, message: str, *, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def describe_connection_error(exc: BaseException) -> str:
    """The driver's message on one line (libpq's spans several, with tabs and hints)."""
    original = getattr(exc, "orig", None) or exc
    text = " ".join(str(original).split())
    return text or type(original).__name__


@contextlib.contextmanager
def reaching(database_url: str) -> Iterator[None]:
    """Turn a failure to reach ``database_url`` into a :class:`CommandError` naming it."""
    try:
        yield
    except (sa.exc.OperationalError, sa.exc.InterfaceError, psycopg.OperationalError) as exc:
        raise CommandError(
            f"cannot reach the database at {db.redacted(database_url)}: "
            f"{describe_connection_error(exc)}"
        ) from exc
