"""The procrastinate application: every task registers on :data:`app` at import.

The module builds the ``App`` and nothing else: its connector is a placeholder until
:func:`bind` (called by ``worker.runtime.setup``) gives it the database in use.
"""

from __future__ import annotations

import pkgutil
from pathlib import Path
from typing import Any

import procrastinate

from worker import db
from worker.jobs.connector import TxAwarePsycopgConnector, UnboundConnector

TASKS_PACKAGE = "worker.tasks"


def task_modules() -> list[str]:
    """Dotted paths of every module in ``worker.tasks`` (found without importing them)."""
    folder = Path(__file__).resolve().parent / "tasks"
    return [
        f"{TASKS_PACKAGE}.{info.name}"
        for info in pkgutil.iter_modules([str(folder)])
        if not info.name.startswith("_")
    ]


class TaskLayerApp(procrastinate.App):
    """procrastinate's App, whose own worker must not run our jobs: they are fenced runs with
    columns and outcomes of ours, run by ``manage.py worker`` (``worker.jobs.runner``)."""

    async def run_worker_async(self, **kwargs: Any) -> None:
        raise NotImplementedError(
            "procrastinate's worker does not run this task layer's jobs: use `python manage.py "
            "worker` (or worker.jobs.runner)"
        )


#: The one App of the process. Tasks register on it; the worker and app code defer through it.
app = TaskLayerApp(connector=UnboundConnector(), import_paths=task_modules())


def bind(
    database_url: str | None,
    *,
    pool_max_size: int = 10,
    open_sync_pool: bool = False,
    connect_timeout: int = 10,
) -> procrastinate.App:
    """Point :data:`app` at ``database_url`` (``None`` closes it and puts the placeholder back).

    Parameters
    ----------
    database_url:
        A ``postgresql://`` URL.
    pool_max_size:
        Size of procrastinate's connection pool (fetch, finish, heartbeats, defers).
    open_sync_pool:
        Open procrastinate's sync pool now, so that its own sync API (``task.defer()``,
        ``job_manager``) works in a process that never runs a worker (app code). It holds no
        connection until first used, and then waits at most ``connect_timeout`` for one.
    connect_timeout:
        Seconds libpq waits for the server.
    """
    previous = app.connector
    if isinstance(previous, TxAwarePsycopgConnector):
        previous.get_sync_connector().close()
    connector: procrastinate.PsycopgConnector | UnboundConnector
    if database_url is None:
        connector = UnboundConnector()
    else:
        pool: dict[str, Any] = {"min_size": 1, "max_size": pool_max_size}
        if open_sync_pool:
            # connect on first use, never at set-up: an unreachable server fails that use
            # within connect_timeout instead of set-up after the pool's 30 s
            pool = {"min_size": 0, "max_size": pool_max_size, "timeout": connect_timeout}
        connector = TxAwarePsycopgConnector(
            conninfo=db.libpq_url(database_url),
            kwargs={"connect_timeout": connect_timeout},
            **pool,
        )
        if open_sync_pool:
            connector.get_sync_connector().open()
    app.connector = connector
    app.job_manager.connector = connector
    return app
