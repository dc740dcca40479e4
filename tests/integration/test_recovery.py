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


def orphan(
    attempts: int = 0, *, alone: bool = False, blamed: int = 0, lost: int = 0
) -> AsyncResult:
    """A job left 'doing' by a worker that no longer exists."""
    result = sample_tasks.add.delay(1, 2)
    with db.session_scope() as session:
        session.execute(
            sa.text(
                "UPDATE procrastinate_jobs SET status = 'doing', worker_id = NULL, runs = 1, "
                "attempts = :attempts, run_alone = :alone, blamed_runs = :blamed, "
                "lost_runs = :lost WHERE id = :id"
            ),
            {"id": result.id, "attempts": attempts, "alone": alone, "blamed": blamed, "lost": lost},
        )
    return result


def counters(job: AsyncResult) -> tuple[str, int, int, int]:
    with db.session_scope() as session:
        row = session.execute(
            sa.text(
                "SELECT status, attempts, lost_runs, blamed_runs FROM procrastinate_jobs "
                "WHERE id = :id"
            ),
            {"id": job.id},
        ).one()
    return (row.status, row.attempts, row.lost_runs, row.blamed_runs)


def sweep(max_lost_runs: int = 3) -> recovery.SweepReport:
    with db.session_scope() as session:
        return recovery.sweep(session.connection(), stalled_after=1, max_lost_runs=max_lost_runs)


def test_orphaned_jobs_are_queued_again_without_using_their_retry_budget() -> None:
    fresh, retried = orphan(0), orphan(2)

    report = sweep()

    assert sorted(report.requeued) == sorted([fresh.id, retried.id])
    assert counters(fresh) == ("todo", 0, 1, 0), "a lost run, not an attempt"
    assert counters(retried) == ("todo", 2, 1, 0)
    assert fresh.status == PENDING
    assert retried.status == RETRY
    assert sweep().requeued == [], "nothing left to recover"


def test_a_job_lost_with_others_is_never_failed_however_often() -> None:
    unlucky = orphan(lost=50)

    report = sweep(max_lost_runs=3)

    assert report.requeued == [unlucky.id]
    assert counters(unlucky) == ("todo", 0, 51, 0), "not blamed: it did not run alone"


def test_a_job_that_kills_its_worker_while_alone_is_failed_as_poison() -> None:
    doomed = orphan(alone=True, blamed=2, lost=3)

    report = sweep(max_lost_runs=3)

    assert report.poison == [doomed.id]
    assert doomed.status == FAILURE
    assert "WorkerLost: its worker died during 3 run(s) in which it ran alone" in doomed.info
    assert counters(doomed)[2:] == (4, 3)


def test_a_suspect_below_the_limit_is_queued_again() -> None:
    suspect = orphan(alone=True, blamed=0, lost=1)

    assert sweep(max_lost_runs=3).requeued == [suspect.id]
    assert counters(suspect) == ("todo", 0, 2, 1)


def test_only_one_process_sweeps_at_a_time() -> None:
    orphan(0)
    with db.session_scope() as first:
        assert recovery.sweep(first.connection(), stalled_after=1, max_lost_runs=3).claimed
        with db.session_scope(new=True) as second:
            assert not recovery.sweep(second.connection(), stalled_after=1, max_lost_runs=3).claimed


def test_a_job_waiting_in_the_queue_is_left_alone() -> None:
    waiting = sample_tasks.add.delay(2, 3)

    assert sweep().requeued == []
    assert waiting.status == PENDING
