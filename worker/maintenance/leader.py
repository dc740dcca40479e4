"""The scheduler's leadership: a PostgreSQL advisory lock held on a connection of its own.

The connection is no pool's: the lock lives as long as this one session, so that it is released
exactly when the leader goes, whether it closes the connection (a graceful stop), is SIGKILLed
(the server ends the backend with its socket) or loses the server (a restart ends every
session). A broken connection is dropped and opened again at the next call, at once, like the
job runner's own connections. The connection's ``application_name`` names the holder's pid and
host, which ``manage.py schedule`` reads from ``pg_locks``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket

import psycopg
from psycopg.rows import dict_row

from worker.jobs import state

#: Seconds to wait for the server when (re)connecting.
CONNECT_TIMEOUT = 5
#: TCP keepalives, so that a silent network failure ends the session (and the lock) server-side
#: and is noticed client-side within about 25 s.
KEEPALIVES = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5,
              "keepalives_count": 3}  # fmt: skip
#: Prefix of the lock connection's application name.
APPLICATION_NAME = "pg-task-layer scheduler"


def application_name() -> str:
    """``pg-task-layer scheduler pid=<pid> host=<host>``, within PostgreSQL's 63 bytes."""
    return f"{APPLICATION_NAME} pid={os.getpid()} host={socket.gethostname()}"[:63]


class Leadership:
    """Tries to take the lock, confirms it is still held, gives it up."""

    def __init__(self, conninfo: str, *, name: str | None = None) -> None:
        self._conninfo = conninfo
        self._name = name or application_name()
        self._connection: psycopg.AsyncConnection[dict[str, object]] | None = None
        self._lock = asyncio.Lock()
        self.held = False

    async def acquire(self) -> bool:
        """Take the lock if nobody holds it; return whether this process holds it now.

        Raises
        ------
        psycopg.Error, OSError
            The database could not be reached (the connection is dropped).
        """
        rows = await self._query("scheduler_try_lead")
        self.held = bool(rows[0]["leading"])
        return self.held

    async def confirm(self) -> bool:
        """Whether the lock is still held: its connection still answers. A connection that does
        not is dropped (and the lock is gone with its session)."""
        if not self.held:
            return False
        try:
            await self._query("scheduler_alive")
        except (psycopg.Error, OSError):
            self.held = False
        return self.held

    async def release(self) -> None:
        """Give the lock up at once, and close the connection."""
        async with self._lock:
            if self.held and self._connection is not None and not self._connection.closed:
                with contextlib.suppress(psycopg.Error, OSError):  # closing releases it anyway
                    await self._connection.execute(state.psycopg_query("scheduler_resign"))
            self.held = False
            await self._drop()

    async def _query(self, name: str) -> list[dict[str, object]]:
        async with self._lock:
            try:
                if self._connection is None or self._connection.closed:
                    self.held = False
                    self._connection = await psycopg.AsyncConnection.connect(
                        self._conninfo,
                        autocommit=True,
                        row_factory=dict_row,
                        connect_timeout=CONNECT_TIMEOUT,
                        application_name=self._name,
                        **KEEPALIVES,  # type: ignore[arg-type]
                    )
                cursor = await self._connection.execute(state.psycopg_query(name))
                return await cursor.fetchall()
            except (psycopg.Error, OSError):
                self.held = False
                await self._drop()
                raise

    async def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(psycopg.Error, OSError):
                await connection.close()
