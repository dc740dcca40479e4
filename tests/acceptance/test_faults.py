"""Faults met by real worker processes: a frozen worker's run is fenced off, a job that kills its
worker is told apart from the jobs it took down, a broken connection costs no retry."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests import fault_tasks
from tests.acceptance.workers import WorkerProcess, tenants, wait_until
from worker import db, runtime
from worker.jobs import FAILURE, STARTED, SUCCESS

pytestmark = pytest.mark.slow

FAULT_TASKS = {"WORKER_IMPORT_PATHS": "tests.sample_tasks,tests.fault_tasks"}


@pytest.fixture(autouse=True)
def task_layer(database_url: str) -> Iterator[None]:
    runtime.setup(database_url)
    yield
    runtime.teardown()


def start(database_url: str, workers: list[WorkerProcess], **env: str) -> WorkerProcess:
    process = WorkerProcess(database_url, "--queues", "default,dataset", env={**FAULT_TASKS, **env})
    workers.append(process)
    return process


def job_counters(job_id: int) -> sa.Row[tuple[str, int, int, int, int]]:
    with db.session_scope(new=True) as session:
        return session.execute(
            sa.text(
                "SELECT status, attempts, lost_runs, blamed_runs, interrupted_runs "
                "FROM procrastinate_jobs WHERE id = :id"
            ),
            {"id": job_id},
        ).one()


def outcome(job_id: int) -> sa.Row[tuple[str, object, str | None]]:
    with db.session_scope(new=True) as session:
        return session.execute(
            sa.text("SELECT status, result, error FROM task_results WHERE job_id = :id"),
            {"id": job_id},
        ).one()


@pytest.mark.parametrize(
    ("first_run_fails", "wake_while_b_runs"),
    [(True, False), (False, False), (True, True), (False, True)],
    ids=["fails-after-b", "succeeds-after-b", "fails-while-b-runs", "succeeds-while-b-runs"],
)
def test_a_frozen_workers_run_is_fenced_off_and_writes_nothing(
    database_url: str,
    workers: list[WorkerProcess],
    tmp_path: Path,
    first_run_fails: bool,
    wake_while_b_runs: bool,
) -> None:
    a = start(database_url, workers)
    marker = tmp_path / "runs"
    result = fault_tasks.fence_probe.delay(
        "fenced", marker=str(marker), seconds=4.0, first_run_fails=first_run_fails,
        later_seconds=6.0 if wake_while_b_runs else 0.0,
    )  # fmt: skip
    wait_until(lambda: marker.exists() and result.status == STARTED, message="A never started it")

    os.kill(a.process.pid, signal.SIGSTOP)  # frozen past the stall limit (2 s in tests)
    b = start(database_url, workers)
    if wake_while_b_runs:
        # A wakes up, its 4 s are over, and it tries to end the job while B runs it
        wait_until(lambda: len(marker.read_text().split()) == 2, message="B never started it")
        os.kill(a.process.pid, signal.SIGCONT)
        a.wait_for_log("was taken away", timeout=30)
        assert result.get(timeout=60) == f"run {b.process.pid}"
    else:
        assert result.get(timeout=60) == f"run {b.process.pid}"
        os.kill(a.process.pid, signal.SIGCONT)
        a.wait_for_log("was taken away", timeout=30)

    time.sleep(1)  # A's run has ended; give a wrong write every chance to land
    assert result.status == SUCCESS
    assert outcome(result.id) == ("SUCCESS", f"run {b.process.pid}", None), "B's outcome"
    assert tenants("fenced") == 1, "exactly one committed effect"
    assert job_counters(result.id)[:3] == ("succeeded", 1, 1), "one attempt, one lost run"
    if first_run_fails:
        assert "refuses" in a.output(), "A's error is in A's log"
        assert "refuses" not in b.output()
    assert a.process.poll() is None, "A goes on serving"


def test_a_job_that_kills_its_worker_is_failed_and_the_jobs_it_took_down_are_not(
    database_url: str, workers: list[WorkerProcess]
) -> None:
    poison = fault_tasks.kill_my_worker.delay("poison")
    bystanders = [fault_tasks.innocent.delay(f"bystander-{n}", seconds=1.5) for n in range(3)]

    deadline = time.monotonic() + 120
    while poison.status not in (FAILURE, SUCCESS) and time.monotonic() < deadline:
        live = [w for w in workers if w.process.poll() is None]
        if len(live) < 2:
            start(database_url, workers, WORKER_MAX_LOST_RUNS="2")
        time.sleep(0.2)

    assert poison.status == FAILURE
    assert "ran alone" in str(poison.info)
    status, attempts, lost, blamed, _ = job_counters(poison.id)
    assert (status, attempts, blamed) == ("failed", 0, 2), "lost runs are no attempts"
    assert lost >= 2
    for bystander in bystanders:
        assert bystander.get(timeout=60) is not None, "never failed for sharing a worker"
    assert [tenants(f"bystander-{n}") for n in range(3)] == [1, 1, 1]


def test_a_run_broken_by_the_database_connection_runs_again_without_using_a_retry(
    database_url: str, workers: list[WorkerProcess], tmp_path: Path
) -> None:
    start(database_url, workers)
    marker = tmp_path / "killed"

    result = fault_tasks.broken_connection.delay("reconnected", marker=str(marker))

    assert result.get(timeout=60) == "reconnected", "the task has no retry policy at all"
    assert marker.exists()
    assert tenants("reconnected") == 1
    status, attempts, lost, _, interrupted = job_counters(result.id)
    assert (status, attempts, lost, interrupted) == ("succeeded", 1, 0, 1)


def test_progress_steps_commit_and_the_rest_commits_with_the_outcome(
    database_url: str, workers: list[WorkerProcess]
) -> None:
    start(database_url, workers)

    result = fault_tasks.steps.delay("stepped", count=3)

    assert result.get(timeout=60) == 3
    assert [tenants(f"stepped-{n}") for n in range(3)] == [1, 1, 1]
    assert tenants("stepped-final") == 1
