"""Deleting an app through the API helper, its data removed by the real job loop in-process:
nothing of it left, the other app whole, nothing touched while the app lives, and a batch the
database refuses fails the job naming the table instead of looping."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests import app_scenario as scenario
from tests.inprocess import drain
from tests.uow import run
from worker import api, db, queues, runtime
from worker.config import Settings
from worker.domain.app_deletion import service, steps
from worker.domain.app_deletion.batches import BATCH, DeletionFailed
from worker.domain.models import App
from worker.jobs import admin
from worker.tasks.app_deletion import APP_DELETION_RETRY, remove_app_and_related_data_task

TASK = "app_deletion.remove_app_and_related_data"


@pytest.fixture
def storage(tmp_path: Path) -> Path:
    return tmp_path / "storage"


@pytest.fixture(autouse=True)
def task_layer(database_url: str, storage: Path) -> Iterator[runtime.Runtime]:
    yield runtime.setup(database_url, settings=Settings(storage_local_path=storage))
    runtime.teardown()


def job_row() -> sa.Row[tuple[int, str, int]]:
    with db.session_scope() as session:
        return session.execute(
            sa.text("SELECT id, status, attempts FROM procrastinate_jobs WHERE task_name = :t"),
            {"t": TASK},
        ).one()


def make_due() -> None:
    """Bring a job waiting for its retry forward (the test does not wait out the backoff)."""
    with db.session_scope() as session:
        session.execute(
            sa.text(
                "UPDATE procrastinate_jobs SET scheduled_at = now()"
                " WHERE task_name = :t AND status = 'todo'"
            ),
            {"t": TASK},
        )


def test_a_deleted_app_leaves_nothing_and_the_other_app_keeps_everything(storage: Path) -> None:
    built = scenario.build(storage, conversations=110, per_conversation=25, runs=1500)
    before = scenario.counts(built.app_id)
    assert before["messages"] == 2750 and before["workflow_node_executions"] == 3000
    assert all(before.values()), before
    other = scenario.counts(built.other_app_id)
    assert scenario.blobs(storage, built.files.values()) == list(built.files.values())

    assert api.delete_app(built.app_id)
    assert scenario.counts(built.app_id)["messages"] == 2750, "the job does the heavy part"
    drain([queues.APP_DELETION])

    assert set(scenario.counts(built.app_id).values()) == {0}
    assert scenario.upload_rows(list(built.files)) == 0
    assert scenario.blobs(storage, built.files.values()) == []
    assert scenario.counts(built.other_app_id) == other
    assert scenario.upload_rows(list(built.other_files)) == len(built.other_files)
    assert scenario.orphans() == dict.fromkeys(scenario.orphans(), 0)
    job_id, status, _ = job_row()
    assert status == "succeeded"
    with db.session_scope() as session:
        shown = admin.show_job(session, job_id)
    deleted = shown["result"]
    assert set(deleted) == set(steps.outcome_tables())
    assert deleted["messages"] == 2750 and deleted["message_chains"] == 2750
    assert deleted["workflow_runs"] == 1500 and deleted["workflow_node_executions"] == 3000
    assert deleted["upload_files"] == 5 and deleted["embedding_vectors"] == 4
    assert deleted["installed_apps"] == 0, "configuration rows cascade with the app"
    assert shown["progress"] is None, "the progress row goes with the job's success"


def test_the_helper_and_the_job_commit_together_or_not_at_all(storage: Path) -> None:
    built = scenario.build(storage, conversations=2, per_conversation=2, runs=2)
    with pytest.raises(RuntimeError), db.session_scope() as session:
        assert api.delete_app(built.app_id, session=session)
        raise RuntimeError("the request failed")
    assert scenario.counts(built.app_id)["apps"] == 1
    with db.session_scope() as session:
        jobs = session.scalar(sa.text("SELECT count(*) FROM procrastinate_jobs"))
    assert jobs == 0
    assert not api.delete_app(str(uuid.uuid4())), "a missing app defers nothing"


def test_a_live_app_is_never_stripped(storage: Path) -> None:
    built = scenario.build(storage, conversations=2, per_conversation=2, runs=2)
    before = scenario.counts(built.app_id)
    # Dify's order: deferred, the app row deleted later (or never)
    result = remove_app_and_related_data_task.delay(built.tenant_id, built.app_id)
    drain([queues.APP_DELETION])

    assert result.status == "RETRY"
    assert "still exists" in str(result.info)
    assert scenario.counts(built.app_id) == before
    for _ in range(APP_DELETION_RETRY.max_retries):
        make_due()
        drain([queues.APP_DELETION])
    assert result.status == "FAILURE"
    assert scenario.counts(built.app_id) == before, "nothing deleted, ever"


def test_a_batch_the_database_refuses_fails_the_job_naming_the_table(storage: Path) -> None:
    built = scenario.build(storage, conversations=4, per_conversation=5, runs=3)
    scenario.refuse("message_chains", "rows of this table are kept")
    assert api.delete_app(built.app_id)
    drain([queues.APP_DELETION])

    job_id, status, attempts = job_row()
    assert (status, attempts) == ("todo", 1), "waits for its retry: it does not loop"
    with db.session_scope() as session:
        shown = admin.show_job(session, job_id)
    assert "deleting from message_chains failed" in shown["error"]
    assert "rows of this table are kept" in shown["error"]
    assert shown["progress"]["step"] == "message_feedbacks", "the last batch committed"
    assert shown["progress"]["deleted"]["workflow_runs"] == 3, "what went before stays gone"
    left = scenario.counts(built.app_id)
    assert left["message_chains"] == 20 and left["workflow_runs"] == 0

    for _ in range(APP_DELETION_RETRY.max_retries):
        make_due()
        drain([queues.APP_DELETION])
    _, status, attempts = job_row()
    assert (status, attempts) == ("failed", APP_DELETION_RETRY.max_retries + 1)

    with db.session_scope() as session:  # the operator removes the cause and retries the job
        session.execute(sa.text("DROP TRIGGER keep ON message_chains"))
        admin.retry_job(session, job_id)
    drain([queues.APP_DELETION])
    assert job_row()[1] == "succeeded"
    assert set(scenario.counts(built.app_id).values()) == {0}
    with db.session_scope() as session:
        deleted = admin.show_job(session, job_id)["result"]
    assert deleted["workflow_runs"] == 3, "counts carried over from the failed runs"
    assert deleted["message_chains"] == 20 and deleted["messages"] == 20


def test_each_statement_deletes_at_most_a_batch(storage: Path) -> None:
    built = scenario.build(storage, conversations=3, per_conversation=2, runs=BATCH + 1)
    with db.session_scope() as session:
        session.execute(sa.delete(App).where(App.id == uuid.UUID(built.app_id)))
    statements: list[int] = []

    def count(conn: object, cursor: object, statement: str, *args: object) -> None:
        if statement.lstrip().upper().startswith("DELETE FROM WORKFLOW_NODE_EXECUTIONS"):
            statements.append(1)

    engine = runtime.current().engine
    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        deleted = run(service.remove_app_data, runtime.current().pipeline.storage,
                      built.tenant_id, built.app_id)  # fmt: skip
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    assert deleted["workflow_node_executions"] == 2 * (BATCH + 1)
    assert len(statements) == 3  # 1000 + 1000 + 2
    assert set(scenario.counts(built.app_id).values()) == {0}


def test_deletion_failed_names_the_table_and_the_reason() -> None:
    error = DeletionFailed("messages", ValueError("boom\nsecond line"))
    assert str(error) == "deleting from messages failed: ValueError: boom"


def test_a_blob_storage_refuses_fails_the_job_before_any_row_of_it_goes(storage: Path) -> None:
    built = scenario.build(storage, conversations=2, per_conversation=3, runs=2)
    stuck = next(iter(built.files.values()))
    (storage / stuck).unlink()
    (storage / stuck).mkdir()  # unlinking a non-empty directory fails
    (storage / stuck / "x").write_bytes(b"x")
    files_before = scenario.counts(built.app_id)["message_files"]
    assert api.delete_app(built.app_id)
    drain([queues.APP_DELETION])

    job_id, status, _ = job_row()
    with db.session_scope() as session:
        error = admin.show_job(session, job_id)["error"]
    assert status == "todo" and "deleting from upload_files failed" in error
    assert scenario.counts(built.app_id)["message_files"] == files_before, "blobs first"
    assert scenario.upload_rows(list(built.files)) == len(built.files)

    (storage / stuck / "x").unlink()
    (storage / stuck).rmdir()
    make_due()
    drain([queues.APP_DELETION])
    assert job_row()[1] == "succeeded"
    assert set(scenario.counts(built.app_id).values()) == {0}
    assert scenario.upload_rows(list(built.files)) == 0
