"""procrastinate connectors: one that also takes sync connections, one that is not bound yet."""

from __future__ import annotations

from typing import Any, NoReturn

import procrastinate
import psycopg
from procrastinate import connector

from worker.db import NotSetUp


class TxAwarePsycopgConnector(procrastinate.PsycopgConnector):
    """procrastinate's async connector that also defers on a *sync* ``psycopg.Connection``.

    Once the async pool is open (in the worker), procrastinate routes sync calls with an external
    connection through ``async_to_sync`` into an async cursor, which a sync connection does not
    have (``TypeError``). Sync external connections go to a never-opened sync connector instead, so
    sync tasks can defer follow-up jobs inside their own SQLAlchemy transaction.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._external = procrastinate.SyncPsycopgConnector(
            json_dumps=kwargs.get("json_dumps"), json_loads=kwargs.get("json_loads")
        )

    def execute_query_all_with_connection(
        self, connection: Any, query: Any, **arguments: Any
    ) -> list[dict[str, Any]]:
        if isinstance(connection, psycopg.Connection):
            return self._external.execute_query_all_with_connection(connection, query, **arguments)
        return super().execute_query_all_with_connection(connection, query, **arguments)

    def execute_query_one_with_connection(
        self, connection: Any, query: Any, **arguments: Any
    ) -> dict[str, Any]:
        if isinstance(connection, psycopg.Connection):
            return self._external.execute_query_one_with_connection(connection, query, **arguments)
        return super().execute_query_one_with_connection(connection, query, **arguments)


class UnboundConnector(connector.BaseAsyncConnector):
    """Placeholder until ``worker.runtime.setup()``: every use says what to do."""

    def _unbound(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise NotSetUp()

    get_sync_connector = _unbound
    open = _unbound
    open_async = _unbound
    execute_query_async = _unbound
    execute_query_one_async = _unbound
    execute_query_all_async = _unbound
    listen_notify = _unbound

    async def close_async(self) -> None:
        return None
