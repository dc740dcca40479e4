"""Job statuses of the polled annotation jobs: deferred with the caller's transaction, ended
with the job's, and read in Dify's shape without ever polling for ever."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests import annotations, factories
from tests.inprocess import drain
from worker import db, queues, runtime
from worker.config import Settings
from worker.domain import job_status
from worker.domain.models import JobKind, JobState, JobStatus
from worker.jobs.uow import UnitOfWork
from worker.tasks import (
    batch_import_annotations_task,
    disable_annotation_reply_task,
    enable_annotation_reply_task,
)

ENABLE = JobKind.ANNOTATION_REPLY_ENABLE


@pytest.fixture(autouse=True)
def task_layer(database_url: str, tmp_path: Path) -> Iterator[runtime.Runtime]:
    yield runtime.setup(database_url, settings=Settings(storage_local_path=tmp_path / "storage"))
    runtime.teardown()


@pytest.fixture
def app_ids() -> tuple[str, str]:
    """(tenant id, app id) of an app with two annotations."""
    with db.session_scope() as session:
        tenant = factories.make_tenant(session)
        app = annotations.make_app(session, tenant)
        annotations.make_annotation(session, app, "How do I reset my password?")
        annotations.make_annotation(session, app, "Where is my invoice?")
        return str(tenant.id), str(app.id)


def enable_arguments(tenant_id: str, app_id: str, job_id: str | None = None) -> dict[str, Any]:
    return {
        "job_id": job_id or str(uuid.uuid4()),
        "app_id": app_id,
        "user_id": str(factories.USER),
        "tenant_id": tenant_id,
        "score_threshold": 0.8,
        "embedding_provider_name": "openai",
        "embedding_model_name": "text-embedding-3-small",
    }


def read(job_id: str, kind: JobKind = ENABLE) -> dict[str, str]:
    with db.session_scope() as session:
        return job_status.read(session, kind, job_id)


def jobs_count() -> int:
    with db.session_scope() as session:
        return int(session.scalar(sa.text("SELECT count(*) FROM procrastinate_jobs")) or 0)


def test_rolled_back_defer_leaves_neither_job_nor_status(app_ids: tuple[str, str]) -> None:
    arguments = enable_arguments(*app_ids)

    with pytest.raises(RuntimeError), db.session_scope() as session:
        job_status.defer(session, ENABLE, enable_annotation_reply_task, **arguments)
        raise RuntimeError("the caller's transaction fails")

    assert jobs_count() == 0
    with pytest.raises(job_status.JobNotFound, match=r"The job does not exist\."):
        read(arguments["job_id"])


def test_committed_defer_reads_waiting_then_completed_after_the_job(
    app_ids: tuple[str, str],
) -> None:
    arguments = enable_arguments(*app_ids)
    job_id = arguments["job_id"]

    with db.session_scope() as session:
        answer = job_status.defer(session, ENABLE, enable_annotation_reply_task, **arguments)

    assert answer == {"job_id": job_id, "job_status": "waiting"}
    assert read(job_id) == {"job_id": job_id, "job_status": "waiting", "error_msg": ""}
    with db.session_scope() as session:
        row = session.get(JobStatus, (uuid.UUID(job_id), ENABLE.value))
        assert row is not None
        assert (str(row.tenant_id), str(row.target_id)) == app_ids
        assert row.procrastinate_job_id is not None

    drain([queues.ANNOTATION])

    assert read(job_id) == {"job_id": job_id, "job_status": "completed", "error_msg": ""}
    assert annotations.setting_of(app_ids[1]) is not None


def test_a_second_enable_or_disable_while_one_waits_answers_with_the_waiting_job(
    app_ids: tuple[str, str],
) -> None:
    tenant_id, app_id = app_ids
    first = enable_arguments(tenant_id, app_id)
    with db.session_scope() as session:
        job_status.defer(session, ENABLE, enable_annotation_reply_task, **first)

    with db.session_scope() as session:
        again = job_status.defer(
            session, ENABLE, enable_annotation_reply_task, **enable_arguments(tenant_id, app_id)
        )
        disable = job_status.defer(
            session, JobKind.ANNOTATION_REPLY_DISABLE, disable_annotation_reply_task,
            job_id=str(uuid.uuid4()), app_id=app_id, tenant_id=tenant_id,
        )  # fmt: skip

    assert again == disable == {"job_id": first["job_id"], "job_status": "processing"}
    assert jobs_count() == 1


def test_a_failed_job_reads_error_with_its_message(app_ids: tuple[str, str]) -> None:
    arguments = enable_arguments(app_ids[0], str(uuid.uuid4()))
    with db.session_scope() as session:
        job_status.defer(session, ENABLE, enable_annotation_reply_task, **arguments)

    drain([queues.ANNOTATION])

    answer = read(arguments["job_id"])
    assert answer["job_status"] == "error"
    assert answer["error_msg"].startswith("App not found")


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ("DELETE FROM procrastinate_jobs", ("error", job_status.GONE)),
        ("UPDATE procrastinate_jobs SET status = 'failed'", ("error", job_status.FAILED)),
        ("UPDATE procrastinate_jobs SET status = 'cancelled'", ("error", job_status.CANCELLED)),
        ("UPDATE procrastinate_jobs SET status = 'doing'", ("processing", "")),
        ("UPDATE procrastinate_jobs SET attempts = 1", ("processing", "")),
    ],
)
def test_a_waiting_status_reads_what_its_job_became(
    app_ids: tuple[str, str], change: str, expected: tuple[str, str]
) -> None:
    """A job lost, failed by the recovery sweep or cancelled never records its end itself."""
    arguments = enable_arguments(*app_ids)
    with db.session_scope() as session:
        job_status.defer(session, ENABLE, enable_annotation_reply_task, **arguments)
    with db.session_scope() as session:
        session.execute(sa.text(change))

    answer = read(arguments["job_id"])

    assert (answer["job_status"], answer["error_msg"]) == expected


def test_unknown_and_malformed_job_ids_do_not_exist() -> None:
    for job_id in (str(uuid.uuid4()), "not-a-uuid"):
        with pytest.raises(job_status.JobNotFound):
            read(job_id)


def test_a_job_deferred_without_the_helper_still_gets_its_status(
    app_ids: tuple[str, str],
) -> None:
    tenant_id, app_id = app_ids
    job_id = str(uuid.uuid4())
    rows = [{"question": "Is there an API?", "answer": "Yes."}]
    batch_import_annotations_task.delay(job_id, rows, app_id, tenant_id, str(factories.USER))

    drain([queues.ANNOTATION])

    kind = JobKind.ANNOTATION_BATCH_IMPORT
    assert read(job_id, kind) == {"job_id": job_id, "job_status": "completed", "error_msg": ""}
    assert annotations.annotation_count(app_id) == 3


def test_a_failure_to_be_retried_leaves_processing_with_its_reason(
    app_ids: tuple[str, str],
) -> None:
    kind = JobKind.ANNOTATION_BATCH_IMPORT
    job_id = uuid.uuid4()

    class Flaky(Exception):
        pass

    with pytest.raises(Flaky), UnitOfWork() as uow:
        with job_status.tracking(uow, kind, str(job_id), retrying=lambda exc: True):
            raise Flaky("embedding endpoint answered 503")

    with db.session_scope() as session:
        row = session.get(JobStatus, (job_id, kind.value))
        assert row is not None
        assert (row.status, row.error) == (JobState.PROCESSING, "embedding endpoint answered 503")
        assert row.finished_at is None
