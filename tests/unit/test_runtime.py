"""runtime.setup() reads the worker's settings from the environment and connects lazily."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from worker import runtime
from worker.config import ConfigError


@pytest.fixture(autouse=True)
def torn_down() -> Iterator[None]:
    yield
    runtime.teardown()


def test_setup_reads_the_environment_unless_given_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STORAGE_LOCAL_PATH", str(tmp_path / "files"))
    monkeypatch.setenv("WORKER_EMBEDDING_DIMENSION", "96")
    monkeypatch.setenv("WORKER_DB_CONNECT_TIMEOUT", "3")
    unreachable = "postgresql://u:p@127.0.0.1:1/db"
    started = time.monotonic()

    current = runtime.setup(unreachable)

    assert time.monotonic() - started < 2, "nothing connects at set-up"
    assert current.settings.storage_root == tmp_path / "files"
    assert current.pipeline.embedder.dimension == 96
    assert current.engine.url.database == "db"
    assert current.database == "127.0.0.1:1/db"


def test_setup_without_a_database_says_how_to_give_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WORKER_DATA_DIR", str(tmp_path))

    with pytest.raises(ConfigError, match=r"pass runtime\.setup\(database_url\), set DATABASE_URL"):
        runtime.setup()


def test_setup_refuses_an_invalid_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKER_EMBEDDING_DIMENSION", "huge")

    with pytest.raises(ConfigError, match="WORKER_EMBEDDING_DIMENSION"):
        runtime.setup("postgresql://u@127.0.0.1:1/db")
