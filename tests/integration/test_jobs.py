"""The job runtime in-process against a real database: defer, run, outcomes, results."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from procrastinate.jobs import Job

from tests import sample_tasks
from tests.inprocess import drain
from worker import db, runtime
from worker.app import app
from worker.domain.models import Tenant
from worker.jobs import (
    FAILURE,
    PENDING,
    SUCCESS,
    AlreadyEnqueued,
    AsyncResult,
    InvalidTaskArguments,
    TaskFailed,
    UnknownJob,
    execution,
    group,
    state,
)


@pytest.fixture(autouse=True)
def task_layer(database_url: str) -> Iterator[runtime.Runtime]:
    yield runtime.setup(database_url)
    runtime.teardown()


def count(statement: sa.Select[tuple[int]]) -> int:
    with db.session_scope(new=True) as session:
        return session.execute(statement).scalar_one()


def jobs(task_name: str | None = None) -> int:
    query = sa.select(sa.func.count()).select_from(sa.table("procrastinate_jobs"))
    if task_name is not None:
        query = query.where(sa.column("task_name") == task_name)
    return count(query)


def tenants(name: str) -> int:
    return count(sa.select(sa.func.count()).where(Tenant.name == name))


def test_rollback_leaves_no_job_and_commit_leaves_one() -> None:
    with pytest.raises(RuntimeError), db.session_scope() as session:
        session.add(Tenant(name="rolled-back"))
        sample_tasks.add.delay(1, 2)
        raise RuntimeError("the caller changes its mind")
    assert jobs() == 0
    assert tenants("rolled-back") == 0

    with db.session_scope() as session:
        session.add(Tenant(name="committed"))
        result = sample_tasks.add.delay(1, 2)
        assert jobs() == 0, "invisible to others until commit"
    assert jobs() == 1
    assert tenants("committed") == 1
    assert result.status == PENDING


def test_queueing_lock_conflict_keeps_the_callers_writes() -> None:
    with db.session_scope() as session:
        session.add(Tenant(name="before"))
        sample_tasks.add.apply_async(args=(1, 1), queueing_lock="only-one")
        with pytest.raises(AlreadyEnqueued):
            sample_tasks.add.apply_async(args=(2, 2), queueing_lock="only-one")
        session.add(Tenant(name="after"))

    assert tenants("before") == 1
    assert tenants("after") == 1
    assert jobs() == 1


def test_arguments_are_checked_against_the_signature_before_anything_is_deferred() -> None:
    with pytest.raises(InvalidTaskArguments, match=r"tests\.add: missing a required argument: 'y'"):
        sample_tasks.add.delay(1)
    with pytest.raises(InvalidTaskArguments, match="unexpected keyword argument 'z'"):
        sample_tasks.add.delay(1, 2, z=3)
    with pytest.raises(InvalidTaskArguments, match="argument 'x' is a object, not a JSON value"):
        sample_tasks.add.delay(object(), 2)
    assert jobs() == 0


def test_delay_runs_and_async_result_reports_success() -> None:
    result = sample_tasks.add.delay(2, y=40)

    drain()

    assert result.status == SUCCESS
    assert result.ready() and result.successful()
    assert result.result == 42
    assert result.get(timeout=1) == 42
    assert AsyncResult(str(result.id)) == result


def test_procrastinates_own_defer_keeps_working() -> None:
    job_id = sample_tasks.add.defer(x=1, y=1)

    drain()

    assert AsyncResult(job_id).get(timeout=1) == 2


def test_group_defers_in_one_batch_and_gets_all_results() -> None:
    result = group(sample_tasks.add.s(x, x) for x in range(5)).apply_async()

    assert len(result) == 5
    assert jobs() == 5
    drain()
    assert result.get(timeout=5) == [0, 2, 4, 6, 8]
    assert result.successful() and result.completed_count() == 5


def test_group_inside_a_rolled_back_transaction_leaves_nothing() -> None:
    with pytest.raises(RuntimeError), db.session_scope():
        group(sample_tasks.add.s(x, 1) for x in range(3)).apply_async()
        raise RuntimeError("abandon")
    assert jobs() == 0


def test_task_writes_and_follow_up_job_commit_together() -> None:
    result = sample_tasks.create_tenant.delay("parent", follow_up="child")

    drain()

    assert result.successful()
    assert tenants("parent") == 1
    assert tenants("child") == 1, "the follow-up deferred inside the task ran too"


def test_failing_task_leaves_neither_its_writes_nor_its_follow_ups() -> None:
    result = sample_tasks.create_tenant_then_fail.delay("doomed", follow_up="orphan")

    drain()

    assert result.status == FAILURE
    assert result.info == "PermanentError: refusing doomed"
    assert tenants("doomed") == 0
    assert jobs("tests.create_tenant") == 0
    with pytest.raises(TaskFailed, match="refusing doomed"):
        result.get(timeout=1)


def test_transient_errors_retry_until_success(tmp_path: Path) -> None:
    counter = tmp_path / "runs"
    result = sample_tasks.flaky.delay(str(counter), failures=2)

    drain()

    assert result.get(timeout=1) == 3
    assert counter.read_text().count("run") == 3


def test_transient_errors_stop_at_the_retry_limit(tmp_path: Path) -> None:
    counter = tmp_path / "runs"
    result = sample_tasks.flaky.delay(str(counter), failures=10)

    drain()

    assert result.status == FAILURE
    assert counter.read_text().count("run") == 3, "max_retries=2: three runs in all"
    assert result.info == "TransientError: transient failure 3"


def test_permanent_errors_fail_at_once_despite_retries() -> None:
    result = sample_tasks.broken.delay("bad input")

    drain()

    assert result.status == FAILURE
    assert result.info == "PermanentError: bad input"
    with db.session_scope() as session:
        attempts = session.execute(sa.text("SELECT attempts FROM procrastinate_jobs")).scalar()
    assert attempts == 1, "a permanent error is not retried"


def test_job_status_commits_with_the_task_writes() -> None:
    result = sample_tasks.create_tenant.delay("atomic")

    drain()

    with db.session_scope() as session:
        status, finished = session.execute(
            sa.text(
                "SELECT status, (SELECT count(*) FROM procrastinate_events "
                "WHERE job_id = :id AND type = 'succeeded') FROM procrastinate_jobs WHERE id = :id"
            ),
            {"id": result.id},
        ).one()
    assert (status, finished) == ("succeeded", 1), "finished once, by the task's transaction"
    assert tenants("atomic") == 1
    assert result.status == SUCCESS


def test_a_duplicate_run_of_a_finished_job_rolls_its_writes_back() -> None:
    result = sample_tasks.create_tenant.delay("duplicate")
    drain()
    with db.session_scope() as session:
        row = session.execute(
            sa.text("SELECT * FROM procrastinate_jobs WHERE id = :id"), {"id": result.id}
        ).one()
    # e.g. a run that started before the first one committed, on a worker presumed dead
    stale = state.Run(job=Job.from_row(dict(row._mapping)), run=row.runs)

    assert execution.run_job(stale) is None, "fenced off: nothing to write"

    assert tenants("duplicate") == 1
    assert result.get(timeout=1) is not None


def test_unknown_job_id_is_an_error() -> None:
    with pytest.raises(UnknownJob, match="no job with id 424242"):
        _ = AsyncResult(424242).status


def test_a_retry_blocked_by_a_waiting_duplicate_fails_instead_of_sticking() -> None:
    first = sample_tasks.requeue_self_then_fail.delay("only-one")

    drain()

    assert first.status == FAILURE, "not left doing forever (procrastinate #1446)"
    assert "Superseded" in first.info
    with db.session_scope() as session:
        waiting = session.execute(
            sa.text("SELECT count(*) FROM procrastinate_jobs WHERE status = 'todo'")
        ).scalar_one()
    assert waiting == 1, "the duplicate still waits and will do the work"


def test_a_jobs_times_are_those_of_its_run_and_its_commit() -> None:
    from worker.jobs import admin

    result = sample_tasks.slow_tenant.delay("timed", seconds=1.5)
    drain()

    with db.session_scope() as session:
        details = admin.show_job(session, result.id)
    assert details["duration"] >= 1.5, "not the ~0 s between the transaction's start and its end"
    elapsed = (details["finished_at"] - details["last_started_at"]).total_seconds()
    assert elapsed == pytest.approx(details["duration"], abs=0.05)
    assert details["started_at"] == details["last_started_at"], "the run's fetch time"
