"""With DATABASE_URL unset, manage.py starts the embedded PostgreSQL and stops it afterwards."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, Manage
from worker.embedded import EmbeddedPostgres

pytestmark = pytest.mark.slow


def test_migrate_twice_then_check_on_the_embedded_default(manage: Manage, tmp_path: Path) -> None:
    env = {"WORKER_DATA_DIR": str(tmp_path / "data")}
    embedded = EmbeddedPostgres(tmp_path / "data")

    first = manage("migrate", env=env)
    assert first.returncode == 0, first.stderr
    assert not embedded.status().running, "the last command using the server stops it"

    second = manage("migrate", env=env)
    check = manage("check", env=env)

    assert second.returncode == 0, second.stderr
    assert "nothing to do" in second.stdout, "the data directory is reused across runs"
    assert check.returncode == 0, check.stderr
    assert "PostgreSQL 18" in check.stdout
    assert not embedded.status().running


def test_db_start_keeps_the_server_running_until_db_stop(manage: Manage, tmp_path: Path) -> None:
    env = {"WORKER_DATA_DIR": str(tmp_path / "data")}
    embedded = EmbeddedPostgres(tmp_path / "data")
    try:
        started = manage("db", "start", env=env)
        assert started.returncode == 0, started.stderr
        assert started.stdout.startswith("postgresql://postgres")

        migrated = manage("migrate", env=env)
        url = manage("db", "url", env=env)
        status = manage("db", "status", env=env)

        assert migrated.returncode == 0, migrated.stderr
        assert embedded.status().running, "a pinned server outlives the commands that used it"
        assert url.stdout == started.stdout
        assert "embedded  running" in status.stdout
        assert "pinned    yes" in status.stdout
    finally:
        stopped = manage("db", "stop", env=env)
    assert stopped.returncode == 0, stopped.stderr
    assert "stopped" in stopped.stdout
    assert not embedded.status().running

    not_running = manage("db", "url", env=env)
    assert not_running.returncode == 1
    assert "is not running" in not_running.stderr


def test_worker_runs_on_the_embedded_default_and_exits_0_on_sigterm(
    manage: Manage, tmp_path: Path
) -> None:
    env = {**os.environ, "WORKER_DATA_DIR": str(tmp_path / "data")}
    assert manage("migrate", env=env).returncode == 0

    process = subprocess.Popen(
        [sys.executable, str(REPO_ROOT / "manage.py"), "worker"],
        env=env,
        cwd=REPO_ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        deadline = time.monotonic() + 60
        seen = []
        while time.monotonic() < deadline:
            line = process.stderr.readline()
            seen.append(line)
            if "worker started on" in line or not line:
                break
        assert "worker started on the embedded PostgreSQL in " in seen[-1], "".join(seen)
        assert ", queues dataset=4" in seen[-1]
        for queue in ("priority_dataset", "mail", "annotation", "default", "ops_trace", "plugin"):
            assert f"{queue}=" in seen[-1]

        process.send_signal(signal.SIGTERM)
        try:
            _, stderr = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGUSR1)  # manage.py dumps every thread's stack
            time.sleep(1)
            process.kill()
            _, stderr = process.communicate()
            pytest.fail(f"worker did not stop within 60 s of SIGTERM:\n{stderr}")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    assert process.returncode == 0, stderr
    assert "worker stopped" in stderr
    assert not EmbeddedPostgres(tmp_path / "data").status().running
