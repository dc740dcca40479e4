"""A dataset deleted through the service, cleaned by a real worker SIGKILLed mid-cleanup: the
restarted worker ends with nothing of it left."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests import cleanup_scenario as scenario
from tests.acceptance.workers import WorkerProcess, wait_until
from worker import db, runtime
from worker.config import Settings
from worker.domain.models import Dataset
from worker.domain.storage import LocalStorage
from worker.domain.vectors import collection_name
from worker.tasks import cleanup
from worker.tasks.cleanup import clean_dataset_task

pytestmark = pytest.mark.slow

#: Extra vectors in the dataset's collection: the cleanup deletes them in 150 batches.
FILLER = 150_000


@pytest.fixture(autouse=True)
def task_layer(database_url: str, tmp_path: Path) -> Iterator[None]:
    runtime.setup(database_url, settings=Settings(storage_local_path=tmp_path / "storage"))
    yield
    runtime.teardown()


def vectors(dataset_id: str) -> int:
    with db.session_scope() as session:
        return int(
            session.scalar(
                sa.text("SELECT count(*) FROM embedding_vectors WHERE collection = :c"),
                {"c": collection_name(dataset_id)},
            )
            or 0
        )


def test_a_dataset_cleanup_killed_mid_way_resumes_to_nothing_left(
    database_url: str, tmp_path: Path, workers: list[WorkerProcess]
) -> None:
    storage = tmp_path / "storage"
    built = scenario.build(storage)
    with db.session_scope() as session:
        session.execute(
            sa.text(
                "INSERT INTO embedding_vectors"
                " (collection, node_id, content, metadata, dimension, embedding)"
                " SELECT :c, 'filler-' || g, 'x', '{}', 3, '[1,2,3]'"
                " FROM generate_series(1, :n) AS g"
            ),
            {"c": collection_name(built.dataset_id), "n": FILLER},
        )
    total = vectors(built.dataset_id)
    assert total == FILLER + 12
    with db.session_scope() as session:
        assert cleanup.delete_dataset(session, built.dataset_id)

    env = {"STORAGE_LOCAL_PATH": str(storage)}
    workers.append(first := WorkerProcess(database_url, "--queues", "dataset", env=env))
    wait_until(lambda: vectors(built.dataset_id) < total, timeout=60, message="never started")
    first.kill()
    left = vectors(built.dataset_id)
    assert 0 < left < total, "killed mid-cleanup"
    workers.append(second := WorkerProcess(database_url, "--queues", "dataset", env=env))
    wait_until(lambda: vectors(built.dataset_id) == 0, timeout=120, message="not resumed")
    wait_until(lambda: scenario.upload_rows(list(built.files)) == 0, timeout=30)
    assert second.stop() == 0

    assert set(scenario.counts(built.dataset_id).values()) == {0}
    local = LocalStorage(storage)
    assert [k for k in built.files.values() if local.exists(k)] == []
    with db.session_scope() as session:
        status = session.scalar(
            sa.text(
                "SELECT status FROM procrastinate_jobs WHERE task_name = 'cleanup.clean_dataset'"
            )
        )
    assert status == "succeeded"


def test_a_cleanup_deferred_before_the_deletion_committed_waits_for_it(
    database_url: str, tmp_path: Path, workers: list[WorkerProcess]
) -> None:
    storage = tmp_path / "storage"
    built = scenario.build(storage)
    before = scenario.counts(built.dataset_id)
    # Dify's order: the cleanup is deferred first, the dataset deleted later
    result = clean_dataset_task.delay(
        built.dataset_id, built.documents[0].tenant_id, "high_quality", None, None, None,
        upload_file_ids=list(built.files),
    )  # fmt: skip
    env = {"STORAGE_LOCAL_PATH": str(storage)}
    workers.append(worker := WorkerProcess(database_url, "--queues", "dataset", env=env))
    wait_until(lambda: result.status == "RETRY", timeout=30, message="no retry")
    assert scenario.counts(built.dataset_id) == before, "a live dataset is left alone"
    assert scenario.upload_rows(list(built.files)) == len(built.files)

    with db.session_scope() as session:  # the deletion commits at last
        session.execute(sa.delete(Dataset).where(Dataset.id == uuid.UUID(built.dataset_id)))
    assert result.get(timeout=60).startswith("deleted 12 vector(s)")
    assert worker.stop() == 0
    assert set(scenario.counts(built.dataset_id).values()) == {0}
    assert scenario.upload_rows(list(built.files)) == 0
