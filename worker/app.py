"""The procrastinate application: connector from the database URL, tasks from ``worker.tasks``.

No side effects at import; ``create_app`` is called by the runtime with the URL in use.
"""

from __future__ import annotations

import pkgutil

import procrastinate

from worker import db, tasks


def task_modules() -> list[str]:
    """Dotted paths of every module in ``worker.tasks``: the worker imports them all."""
    return [
        f"{tasks.__name__}.{info.name}"
        for info in pkgutil.iter_modules(tasks.__path__)
        if not info.name.startswith("_")
    ]


def create_app(database_url: str, *, pool_max_size: int = 10) -> procrastinate.App:
    """A procrastinate ``App`` on ``database_url`` with every task module registered.

    Parameters
    ----------
    database_url:
        A ``postgresql://`` URL.
    pool_max_size:
        Size of procrastinate's connection pool (fetch, finish, heartbeats and defers).
    """
    connector = procrastinate.PsycopgConnector(
        conninfo=db.libpq_url(database_url),
        min_size=1,
        max_size=pool_max_size,
    )
    return procrastinate.App(connector=connector, import_paths=task_modules())
