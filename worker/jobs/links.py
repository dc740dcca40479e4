"""The runner's own connections: opened when needed, re-opened at once after they break."""

from __future__ import annotations

import asyncio
import contextlib

import psycopg
from psycopg.rows import dict_row

from worker.jobs import state

#: Seconds to wait for the server when (re)connecting.
CONNECT_TIMEOUT = 5
#: TCP keepalives of the runner's connections, so that a silent failover is noticed.
KEEPALIVES = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5,
              "keepalives_count": 3}  # fmt: skip


class Link:
    """A connection of the runner's own (autocommit), opened when first needed, dropped when it
    breaks and opened again at the next query: after an outage it is back as soon as the server
    accepts connections. Queries on one link run one at a time."""

    def __init__(self, conninfo: str) -> None:
        self._conninfo = conninfo
        self._connection: psycopg.AsyncConnection[dict[str, object]] | None = None
        self._lock = asyncio.Lock()

    async def query(self, name: str, **params: object) -> list[dict[str, object]]:
        """Run the named query of ``worker/domain/sql``; its rows (none for a command)."""
        async with self._lock:
            connection = await self._connect()
            try:
                cursor = await connection.execute(state.psycopg_query(name), params)
                return await cursor.fetchall() if cursor.description else []
            except (psycopg.OperationalError, OSError):
                await self._drop()
                raise

    async def close(self) -> None:
        """Close the connection, if open."""
        async with self._lock:
            await self._drop()

    async def _connect(self) -> psycopg.AsyncConnection[dict[str, object]]:
        if self._connection is None or self._connection.closed:
            self._connection = await psycopg.AsyncConnection.connect(
                self._conninfo,
                autocommit=True,
                row_factory=dict_row,
                connect_timeout=CONNECT_TIMEOUT,
                **KEEPALIVES,  # type: ignore[arg-type]
            )
        return self._connection

    async def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(psycopg.Error, OSError):
                await connection.close()
