"""A real ``manage.py worker`` subprocess for acceptance tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from tests.conftest import REPO_ROOT

#: Fast timings so that crash recovery happens within seconds in tests.
FAST_TIMINGS = {
    "WORKER_HEARTBEAT_INTERVAL": "0.5",
    "WORKER_STALLED_AFTER": "2",
    "WORKER_RECOVERY_INTERVAL": "0.5",
    "WORKER_IMPORT_PATHS": "tests.sample_tasks",
}


class WorkerProcess:
    """``python manage.py worker ARGS`` on ``database_url``; stderr goes to a file we can read."""

    def __init__(self, database_url: str, *args: str, env: dict[str, str] | None = None) -> None:
        self.log = Path(tempfile.mkstemp(prefix="worker-", suffix=".log")[1])
        self._log_handle = self.log.open("w")
        self.process = subprocess.Popen(
            [sys.executable, str(REPO_ROOT / "manage.py"), "worker", *args],
            env={**os.environ, "DATABASE_URL": database_url, **FAST_TIMINGS, **(env or {})},
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=self._log_handle,
            stderr=subprocess.STDOUT,
        )
        self.wait_for_log("worker started on")

    def output(self) -> str:
        return self.log.read_text()

    def wait_for_log(self, text: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output():
            if self.process.poll() is not None:
                raise AssertionError(f"worker exited {self.process.returncode}:\n{self.output()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {text!r} in the worker's log:\n{self.output()}")
            time.sleep(0.05)

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM, then wait for a graceful exit; return the exit code."""
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.send_signal(signal.SIGUSR1)  # manage.py dumps every thread's stack
            time.sleep(1)
            self.kill()
            raise AssertionError(
                f"worker ignored SIGTERM for {timeout} s:\n{self.output()}"
            ) from None

    def kill(self) -> None:
        """SIGKILL: no cleanup, no unregistering, jobs left ``doing``."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def close(self) -> None:
        self.kill()
        self._log_handle.close()
        self.log.unlink(missing_ok=True)


def wait_until(predicate: object, timeout: float = 30, message: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(message or "condition not met in time")
        time.sleep(0.05)


def start(database_url: str, *args: str, **env: str) -> WorkerProcess:
    return WorkerProcess(database_url, *args, env=env)


def tenants(name: str) -> int:
    """Tenants called ``name``: the effect the sample tasks commit, counted in a fresh session."""
    import sqlalchemy as sa

    from worker import db
    from worker.domain.models import Tenant

    with db.session_scope(new=True) as session:
        return session.execute(sa.select(sa.func.count()).where(Tenant.name == name)).scalar_one()


__all__: Sequence[str] = ("FAST_TIMINGS", "WorkerProcess", "start", "tenants", "wait_until")
