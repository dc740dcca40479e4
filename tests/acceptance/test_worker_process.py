"""A real worker subprocess: crash recovery, graceful drain, queue selection."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from tests import sample_tasks
from tests.acceptance.workers import WorkerProcess, tenants, wait_until
from worker import db, runtime
from worker.jobs import PENDING, STARTED, SUCCESS, AsyncResult

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def task_layer(database_url: str) -> Iterator[None]:
    runtime.setup(database_url)
    yield
    runtime.teardown()


def job_row(job_id: int) -> sa.Row[tuple[str, int, int]]:
    """procrastinate's status and attempts of a job, and how often it was re-queued."""
    with db.session_scope(new=True) as session:
        return session.execute(
            sa.text(
                "SELECT status, attempts, (SELECT count(*) FROM procrastinate_events "
                "WHERE job_id = :id AND type = 'deferred_for_retry') AS requeued "
                "FROM procrastinate_jobs WHERE id = :id"
            ),
            {"id": job_id},
        ).one()


def test_sigkilled_workers_job_is_completed_by_a_restarted_worker_exactly_once(
    database_url: str, workers: list[WorkerProcess]
) -> None:
    first = WorkerProcess(database_url)
    workers.append(first)
    result = sample_tasks.slow_tenant.delay("survivor", seconds=2.0)
    wait_until(lambda: result.status == STARTED, message="the job never started")

    first.kill()
    second = WorkerProcess(database_url)
    workers.append(second)

    assert result.get(timeout=60) == "survivor"
    assert tenants("survivor") == 1
    # the dead worker's jobs, this one among them (it may also have held jobs taken ahead)
    requeued = re.search(r"re-queued \d+ job\(s\) \[([\d, ]*)\]", second.output())
    assert requeued is not None and str(result.id) in requeued.group(1).split(", ")
    assert second.stop() == 0


def test_graceful_drain_finishes_running_jobs_and_nobody_starts_them_twice(
    database_url: str, workers: list[WorkerProcess]
) -> None:
    draining = WorkerProcess(database_url, env={"WORKER_SHUTDOWN_TIMEOUT": "30"})
    workers.append(draining)
    # the job outlives WORKER_STALLED_AFTER (2 s) while its worker drains
    result = sample_tasks.slow_tenant.delay("drained", seconds=5.0)
    wait_until(lambda: result.status == STARTED, message="the job never started")
    sweeper = WorkerProcess(database_url, "--queues", "mail")
    workers.append(sweeper)

    assert draining.stop() == 0

    assert result.get(timeout=1) == "drained"
    assert tenants("drained") == 1
    status, attempts, requeued = job_row(result.id)
    assert requeued == 0, "no sweep may re-queue a job that is still running on a draining worker"
    assert (status, attempts) == ("succeeded", 1)
    assert "stalled" not in sweeper.output() + draining.output()
    assert "worker stopped" in draining.output()


def test_queues_flag_leaves_other_queues_untouched(
    database_url: str, workers: list[WorkerProcess]
) -> None:
    dataset_job = sample_tasks.create_tenant.delay("dataset-side")
    mail_job = sample_tasks.mail_like.delay("mail-side")
    only_dataset = WorkerProcess(database_url, "--queues", "dataset")
    workers.append(only_dataset)

    assert dataset_job.get(timeout=30)
    wait_until(lambda: "worker started" in only_dataset.output())

    assert mail_job.status == PENDING
    assert tenants("mail-side") == 0
    assert only_dataset.stop() == 0
    assert mail_job.status == PENDING


def test_every_queue_is_served_when_no_queue_is_named(
    database_url: str, workers: list[WorkerProcess]
) -> None:
    jobs = [
        sample_tasks.create_tenant.delay("any-dataset"),
        sample_tasks.mail_like.delay("any-mail"),
        sample_tasks.add.delay(20, 22),
    ]
    workers.append(WorkerProcess(database_url))

    assert [job.get(timeout=30) is not None for job in jobs] == [True, True, True]
    assert all(AsyncResult(job.id).status == SUCCESS for job in jobs)


def test_jobs_outliving_the_shutdown_timeout_are_left_to_recovery(
    database_url: str, workers: list[WorkerProcess]
) -> None:
    impatient = WorkerProcess(database_url, env={"WORKER_SHUTDOWN_TIMEOUT": "1"})
    workers.append(impatient)
    result = sample_tasks.slow_tenant.delay("outlived", seconds=15.0)
    wait_until(lambda: result.status == STARTED, message="the job never started")

    started = time.monotonic()
    assert impatient.stop(timeout=30) == 0
    assert time.monotonic() - started < 12, "exits within the timeout plus the grace period"
    assert "still running after the shutdown timeout" in impatient.output()

    successor = WorkerProcess(database_url)
    workers.append(successor)
    assert result.get(timeout=60) == "outlived"
    assert tenants("outlived") == 1


def test_sigterm_right_after_start_up_stops_at_once(
    database_url: str, workers: list[WorkerProcess]
) -> None:
    worker = WorkerProcess(database_url)
    workers.append(worker)

    assert worker.stop(timeout=10) == 0, "no job runs: nothing to wait for"
    assert "still running after the shutdown timeout" not in worker.output()
