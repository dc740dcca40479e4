"""The sweep that re-defers documents stuck in progress with no job."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests import factories
from tests.conftest import Manage
from tests.uow import run
from worker import db, runtime
from worker.config import Settings
from worker.domain.models import Document, IndexingStatus
from worker.tasks import maintenance, recover_document_indexing_task


@pytest.fixture(autouse=True)
def task_layer(database_url: str, tmp_path: Path) -> Iterator[None]:
    runtime.setup(database_url, settings=Settings(storage_local_path=tmp_path))
    yield
    runtime.teardown()


def make_documents(*statuses: IndexingStatus, paused: bool = False) -> list[str]:
    with db.session_scope() as session:
        dataset = factories.make_dataset(session, factories.make_tenant(session))
        ids = [
            str(factories.make_document(
                session, dataset, position=i, indexing_status=status, is_paused=paused
            ).id)
            for i, status in enumerate(statuses, start=1)
        ]  # fmt: skip
        session.execute(
            sa.update(Document).values(updated_at=sa.func.now() - sa.text("interval '1 hour'"))
        )
    return ids


def test_stuck_documents_are_deferred_once(database_url: str) -> None:
    stuck = make_documents(IndexingStatus.PARSING, IndexingStatus.INDEXING)
    make_documents(IndexingStatus.COMPLETED, IndexingStatus.ERROR)

    assert sorted(run(maintenance.recover_stuck_documents, older_than=60)) == sorted(stuck)
    assert run(maintenance.recover_stuck_documents, older_than=60) == [], "their jobs now wait"


def test_documents_with_a_live_job_paused_or_recent_are_left_alone() -> None:
    (with_job,) = make_documents(IndexingStatus.INDEXING)
    with db.session_scope() as session:
        dataset_id = session.scalar(sa.select(Document.dataset_id).where(Document.id == with_job))
    recover_document_indexing_task.delay(str(dataset_id), with_job)
    make_documents(IndexingStatus.SPLITTING, paused=True)

    assert run(maintenance.recover_stuck_documents, older_than=60) == []
    assert run(maintenance.recover_stuck_documents, older_than=7200) == []


def test_documents_recover_command(manage: Manage, database_url: str) -> None:
    (stuck,) = make_documents(IndexingStatus.WAITING)

    result = manage(
        "documents", "recover", "--older-than", "60", env={"DATABASE_URL": database_url}
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [stuck, "1 document(s) deferred for recovery"]
