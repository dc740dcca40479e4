"""Fixtures of the acceptance tests: real worker processes, closed (and thawed) after each test."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest

from tests.acceptance.workers import WorkerProcess


@pytest.fixture
def workers() -> Iterator[list[WorkerProcess]]:
    """Worker processes a test starts; each is SIGCONTed (if frozen) and killed afterwards."""
    started: list[WorkerProcess] = []
    yield started
    for process in started:
        if process.process.poll() is None:
            os.kill(process.process.pid, signal.SIGCONT)
        process.close()
