"""What the benchmarks share: the database, the processes they start (and always stop), figures."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from worker import db  # noqa: E402
from worker.embedded import EmbeddedPostgres  # noqa: E402

#: Seconds a process gets to stop after SIGTERM before it is killed.
STOP_TIMEOUT = 30


@contextlib.contextmanager
def database() -> Iterator[str]:
    """``DATABASE_URL`` if set, else a fresh embedded PostgreSQL 18 in a temporary directory."""
    if os.environ.get("DATABASE_URL"):
        yield db.libpq_url(os.environ["DATABASE_URL"])
        return
    with tempfile.TemporaryDirectory(prefix="bench-") as root:
        with EmbeddedPostgres(Path(root)).attached() as url:
            yield url


class Process:
    """A process the benchmark started: its output goes to a log file, it is stopped by pid."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], log: Path) -> None:
        self.name = name
        self.log = log
        with log.open("wb") as out:
            self.popen = subprocess.Popen(
                command, cwd=REPO, env={**os.environ, **env},
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )  # fmt: skip
        self.pid = self.popen.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def check(self) -> None:
        """Raise if the process has exited (it should run until we stop it)."""
        if self.popen.poll() is not None:
            tail = "\n".join(self.output().splitlines()[-40:])
            raise SystemExit(f"{self.name} exited with {self.popen.returncode}:\n{tail}")

    def wait_for(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output():
            self.check()
            if time.monotonic() > deadline:
                raise SystemExit(f"{self.name} did not print {text!r} in {timeout:.0f} s")
            time.sleep(0.02)

    def stop(self) -> None:
        """SIGTERM to this pid, SIGKILL after STOP_TIMEOUT seconds."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=STOP_TIMEOUT)


class Processes:
    """Every process started through it is stopped, by its pid, when the block ends."""

    def __init__(self) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="bench-logs-"))
        self._running: list[Process] = []
        self._count = 0

    def start(self, name: str, command: list[str], env: dict[str, str] | None = None) -> Process:
        self._count += 1
        log = self._dir / f"{self._count:03d}-{name.replace(' ', '_').replace('/', '_')}.log"
        process = Process(name, command, env or {}, log)
        self._running.append(process)
        return process

    def stop(self, process: Process) -> None:
        process.stop()
        if process in self._running:
            self._running.remove(process)

    @contextlib.contextmanager
    def running(
        self, name: str, command: list[str], env: dict[str, str] | None = None
    ) -> Iterator[Process]:
        process = self.start(name, command, env)
        try:
            yield process
        finally:
            self.stop(process)

    def close(self) -> None:
        while self._running:
            self.stop(self._running[-1])
        shutil.rmtree(self._dir, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def redis_server(processes: Processes) -> Iterator[str | None]:
    """A throwaway redis-server on 127.0.0.1 (no persistence); None when it is not installed."""
    binary = shutil.which("redis-server")
    if binary is None:
        yield None
        return
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="bench-redis-") as root:
        command = [
            binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", root, "--daemonize", "no",
        ]  # fmt: skip
        with processes.running("redis-server", command) as process:
            process.wait_for("Ready to accept connections")
            yield f"redis://127.0.0.1:{port}"


@contextlib.contextmanager
def terminated_on_signals() -> Iterator[None]:
    """SIGTERM and SIGHUP end the benchmark like Ctrl-C: every ``finally`` (cleanup) runs."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p * (len(ordered) - 1)))]
