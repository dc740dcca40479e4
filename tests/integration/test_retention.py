"""Retention: exactly the eligible rows go, in bounded batches; a dry run deletes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from tests import inprocess
from tests.retention_rows import (
    DAY,
    HOUR,
    execute,
    make_delivery,
    make_job,
    make_outcome,
    make_status,
    make_tick,
    scalars,
)
from tests.uow import run
from worker import db, runtime
from worker.jobs import state
from worker.maintenance import retention
from worker.tasks import prune_finished_jobs_task

POLICY = retention.RetentionPolicy(
    finished=timedelta(days=1), failed=timedelta(days=7), mail_deliveries=timedelta(days=30)
)


@pytest.fixture(autouse=True)
def task_layer(database_url: str) -> Iterator[None]:
    runtime.setup(database_url)
    yield
    runtime.teardown()


def remaining_jobs() -> set[object]:
    return set(scalars("SELECT id FROM procrastinate_jobs"))


def counts() -> dict[str, object]:
    return {table: scalars(f"SELECT count(*) FROM {table}")[0] for table in retention.TABLES}


@pytest.fixture
def world() -> dict[str, object]:
    """One row of every kind, eligible or not."""
    old_done = make_job("succeeded", 2 * DAY, outcome="SUCCESS")
    recent_done = make_job("succeeded", 2 * HOUR, outcome="SUCCESS")
    recent_failure = make_job("failed", 2 * DAY, outcome="FAILURE")
    old_failure = make_job("failed", 8 * DAY, outcome="FAILURE")
    old_cancelled = make_job("cancelled", 2 * DAY)
    old_aborted = make_job("aborted", 2 * DAY, outcome="FAILURE")
    old_waiting = make_job("todo", 10 * DAY, outcome="RETRY")
    old_running = make_job("doing", 10 * DAY)
    make_outcome(10_000_001, "SUCCESS", 2 * DAY)  # its job is gone: eligible
    make_outcome(10_000_002, "SUCCESS", 2 * HOUR)  # too recent
    make_outcome(10_000_003, "FAILURE", 2 * DAY)  # failures are kept 7 days
    old_mail = make_delivery(old_done, 31 * DAY)
    mail_of_waiting_job = make_delivery(old_waiting, 31 * DAY)
    recent_mail = make_delivery(old_done, 29 * DAY)
    for age in (9 * DAY, 8 * DAY, HOUR):
        make_tick("often", age)
    make_tick("rarely", 10 * DAY)  # its latest tick: kept
    statuses_gone = {make_status("completed", 2 * DAY), make_status("error", 8 * DAY)}
    statuses_kept = {
        make_status("completed", 2 * HOUR),
        make_status("error", 2 * DAY),
        make_status("processing", None),
    }
    return {
        "gone": {old_done, old_failure, old_cancelled, old_aborted},
        "kept": {recent_done, recent_failure, old_waiting, old_running},
        "outcomes_kept": {recent_done, recent_failure, old_waiting, 10_000_002, 10_000_003},
        "mail_gone": {old_mail},
        "statuses_gone": statuses_gone,
        "statuses_kept": statuses_kept,
        "mail_kept": {mail_of_waiting_job, recent_mail},
    }


def test_prune_deletes_exactly_the_eligible_rows(world: dict[str, object]) -> None:
    report = run(retention.prune, POLICY)

    assert remaining_jobs() == world["kept"]
    assert set(scalars("SELECT DISTINCT job_id FROM procrastinate_events")) == world["kept"]
    assert set(scalars("SELECT job_id FROM task_results")) == world["outcomes_kept"]
    assert set(scalars("SELECT id FROM mail_deliveries")) == world["mail_kept"]
    assert set(scalars("SELECT job_id FROM job_statuses")) == world["statuses_kept"]
    assert scalars("SELECT job_name FROM scheduler_ticks ORDER BY job_name") == ["often", "rarely"]
    assert report.rows == {
        "procrastinate_jobs": 4,
        # deferred, started, end; a cancelled job never started; an aborted one was asked to
        "procrastinate_events": 3 + 3 + 2 + 4,
        "task_results": 3 + 1,  # three of the jobs had an outcome, plus the orphan
        "mail_deliveries": 1,
        "job_statuses": 2,
        "scheduler_ticks": 2,
    }


def test_an_outcome_is_never_deleted_before_its_job(world: dict[str, object]) -> None:
    kept = sorted(world["kept"])  # type: ignore[call-overload]

    with db.session_scope(new=True) as session:
        assert state.delete_outcomes(session, kept) == 0

    assert set(scalars("SELECT job_id FROM task_results WHERE job_id = ANY(:ids)", ids=kept)) == {
        job
        for job in kept
        if job in world["outcomes_kept"]  # type: ignore[operator]
    }


def test_a_dry_run_counts_the_same_rows_and_deletes_nothing(world: dict[str, object]) -> None:
    before = counts()

    dry = run(retention.prune, POLICY, dry_run=True)

    assert counts() == before
    assert dry.batches == 0
    real = run(retention.prune, POLICY)
    assert dry.rows == real.rows


def test_every_transaction_deletes_at_most_a_batch() -> None:
    jobs = [make_job("succeeded", 2 * DAY, outcome="SUCCESS") for _ in range(25)]
    kept = make_job("succeeded", HOUR, outcome="SUCCESS")
    batches: list[tuple[str, int]] = []
    policy = retention.RetentionPolicy(
        finished=DAY, failed=7 * DAY, mail_deliveries=30 * DAY, batch_size=10
    )

    report = run(
        retention.prune, policy, progress=lambda table, rows, _: batches.append((table, rows))
    )

    assert remaining_jobs() == {kept}
    assert report.rows["procrastinate_jobs"] == 25
    assert report.rows["procrastinate_events"] == 75
    assert max(rows for _, rows in batches) <= 10
    assert report.largest_batch == 10
    # each batch of jobs: its events first, then the jobs, then their outcomes
    order = [table for table, _ in batches]
    assert order.index("procrastinate_events") < order.index("procrastinate_jobs")
    assert order.index("procrastinate_jobs") < order.index("task_results")
    assert scalars("SELECT count(*) FROM task_results WHERE job_id = ANY(:ids)", ids=jobs) == [0]


def test_a_job_run_again_after_it_was_read_is_not_deleted() -> None:
    job_id = make_job("failed", 8 * DAY, outcome="FAILURE")
    cutoffs = state.Cutoffs(
        finished_before=datetime.now(UTC) - DAY, failed_before=datetime.now(UTC) - 7 * DAY
    )
    with db.session_scope(new=True) as session:
        batch = state.prunable_jobs(session, cutoffs, after=0, limit=10)
    assert batch == [(job_id, 1)]
    # an operator retries it, it runs and fails again
    execute("UPDATE procrastinate_jobs SET status = 'todo' WHERE id = :id", id=job_id)
    execute("UPDATE procrastinate_jobs SET status = 'doing', runs = 2 WHERE id = :id", id=job_id)
    execute("UPDATE procrastinate_jobs SET status = 'failed' WHERE id = :id", id=job_id)

    with db.session_scope(new=True) as session:
        assert state.delete_jobs(session, batch) == []
    assert remaining_jobs() == {job_id}


def test_the_scheduled_prune_runs_as_a_job() -> None:
    old = make_job("succeeded", 2 * DAY, outcome="SUCCESS")

    job = prune_finished_jobs_task.delay()
    inprocess.drain()

    assert job.get(timeout=10)["procrastinate_jobs"] == 1
    assert old not in remaining_jobs()
    assert job.id in remaining_jobs(), "it does not delete itself"


def test_deliveries_and_ticks_go_in_batches_too() -> None:
    job_id = make_job("succeeded", 40 * DAY)
    for _ in range(25):
        make_delivery(job_id, 31 * DAY)
    for hours in range(25):
        make_tick("often", 8 * DAY + hours * HOUR)
    make_tick("often", HOUR)
    batches: list[tuple[str, int]] = []
    policy = retention.RetentionPolicy(
        finished=DAY, failed=7 * DAY, mail_deliveries=30 * DAY, batch_size=10
    )

    run(retention.prune, policy, progress=lambda table, rows, _: batches.append((table, rows)))

    assert [rows for table, rows in batches if table == "mail_deliveries"] == [10, 10, 5]
    assert [rows for table, rows in batches if table == "scheduler_ticks"] == [10, 10, 5]
    assert scalars("SELECT count(*) FROM mail_deliveries") == [0]
    assert scalars("SELECT count(*) FROM scheduler_ticks") == [1]
