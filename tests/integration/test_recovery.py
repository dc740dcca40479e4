"""The stalled-job sweep, on jobs left 'doing' by workers that are gone."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from tests import sample_tasks
from worker import db, recovery, runtime
from worker.jobs import FAILURE, PENDING, RETRY, AsyncResult


@pytest.fixture(autouse=True)
def task_layer(database_url: str) -> Iterator[None]:
    runtime.setup(database_url)
    yield
    runtime.teardown()


def orphan(attempts: int) -> AsyncResult:
    """A job left 'doing' by a worker that no longer exists."""
    result = sample_tasks.add.delay(1, 2)
    with db.session_scope() as session:
        session.execute(
            sa.text(
                "UPDATE procrastinate_jobs SET status = 'doing', worker_id = NULL, "
                "attempts = :attempts WHERE id = :id"
            ),
            {"id": result.id, "attempts": attempts},
        )
    return result


def sweep() -> recovery.SweepReport:
    with db.session_scope() as session:
        return recovery.sweep(session, stalled_after=1)


def test_orphaned_jobs_are_queued_again() -> None:
    fresh, retried = orphan(0), orphan(2)

    report = sweep()

    assert sorted(report.retried) == sorted([fresh.id, retried.id])
    assert fresh.status == RETRY, "todo again, one attempt counted"
    assert retried.status == RETRY
    assert sweep().retried == [], "nothing left to recover"


def test_a_job_that_keeps_losing_its_worker_is_failed_with_the_reason() -> None:
    doomed = orphan(recovery.MAX_RUNS - 1)

    report = sweep()

    assert report.abandoned == [doomed.id]
    assert doomed.status == FAILURE
    assert "WorkerLost: its worker died during each of 5 runs" in doomed.info


def test_only_one_process_sweeps_at_a_time() -> None:
    orphan(0)
    with db.session_scope() as first:
        assert recovery.sweep(first, stalled_after=1).claimed
        with db.session_scope(new=True) as second:
            assert not recovery.sweep(second, stalled_after=1).claimed


def test_a_job_waiting_in_the_queue_is_left_alone() -> None:
    waiting = sample_tasks.add.delay(2, 3)

    assert sweep().retried == []
    assert waiting.status == PENDING
