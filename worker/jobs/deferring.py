"""Deferring jobs inside the caller's transaction.

A job is inserted on the connection of the caller's SQLAlchemy session, so it commits or rolls back
with the caller's own writes and the worker is woken (NOTIFY) at commit. An insert with a queueing
lock runs inside a SAVEPOINT: a conflict raises ``AlreadyEnqueued`` and leaves the caller's
transaction usable, instead of poisoning it so that its COMMIT silently becomes a ROLLBACK.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from procrastinate import tasks
from sqlalchemy import orm

from worker import db

if TYPE_CHECKING:
    from worker.jobs.task import CeleryTask


def defer(
    task: tasks.Task[Any, Any, Any],
    arguments: Mapping[str, Any],
    options: Mapping[str, Any],
    *,
    session: orm.Session | None = None,
) -> int:
    """Insert one job in ``session``'s transaction (or the open ``session_scope``, or a new one)."""
    return defer_batch(task, [arguments], options, session=session)[0]


def defer_batch(
    task: tasks.Task[Any, Any, Any],
    arguments: Sequence[Mapping[str, Any]],
    options: Mapping[str, Any],
    *,
    session: orm.Session | None = None,
) -> list[int]:
    """Insert jobs of one task sharing ``options`` in one statement; return their ids in order.

    With no transaction to join, the statement is its own transaction (autocommit): one round
    trip, and a queueing-lock conflict cannot poison anything else.
    """
    if session is None:
        session = db.current_session()
    if session is not None:
        return _insert(session, task, arguments, options)
    with db.autocommit_connection() as connection:
        deferrer = task.configure(connection=connection.connection.driver_connection, **options)
        return list(deferrer.batch_defer(*[dict(a) for a in arguments]))


def defer_signatures(
    items: Sequence[tuple[CeleryTask, Mapping[str, Any], Mapping[str, Any]]],
    *,
    session: orm.Session | None = None,
) -> list[int]:
    """Insert ``(task, arguments, options)`` items in one transaction, batching neighbours that
    share a task and options; return the job ids in the order of ``items``."""
    if session is None:
        with db.session_scope() as scoped:
            return defer_signatures(items, session=scoped)
    ids: list[int] = []
    start = 0
    while start < len(items):
        task, _, options = items[start]
        end = start + 1
        while end < len(items) and items[end][0] is task and items[end][2] == options:
            end += 1
        batch = [arguments for _, arguments, _ in items[start:end]]
        ids.extend(_insert(session, task, batch, options))
        start = end
    return ids


def _insert(
    session: orm.Session,
    task: tasks.Task[Any, Any, Any],
    arguments: Sequence[Mapping[str, Any]],
    options: Mapping[str, Any],
) -> list[int]:
    if not options.get("queueing_lock"):
        return _batch_defer(session, task, arguments, options)
    # SQLAlchemy emits the SAVEPOINT lazily, at the next use of the session's connection: the
    # connection must be fetched inside the nested block (``_batch_defer`` does).
    with session.begin_nested():
        return _batch_defer(session, task, arguments, options)


def _batch_defer(
    session: orm.Session,
    task: tasks.Task[Any, Any, Any],
    arguments: Sequence[Mapping[str, Any]],
    options: Mapping[str, Any],
) -> list[int]:
    deferrer = task.configure(connection=db.driver_connection(session), **options)
    return list(deferrer.batch_defer(*[dict(a) for a in arguments]))
