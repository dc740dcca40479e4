"""Worker recycling with a real worker subprocess: ``--max-jobs`` and ``--max-memory`` drain the
process and replace it in place (same pid after exec), every job running exactly once."""

from __future__ import annotations

import collections
import os
import re
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from tests import leak_tasks, sample_tasks
from tests.acceptance.workers import FAST_TIMINGS, WorkerProcess, tenants, wait_until
from tests.conftest import Manage
from worker import db, runtime
from worker.jobs import STARTED, AsyncResult

pytestmark = pytest.mark.slow

IMPORTS = {"WORKER_IMPORT_PATHS": f"{FAST_TIMINGS['WORKER_IMPORT_PATHS']},tests.leak_tasks"}
#: What each job of the memory test leaks.
LEAK_MIB = 16
MIB = 1024 * 1024
RECYCLE_LINE = "replacing this worker process with a fresh one"


@pytest.fixture(autouse=True)
def task_layer(database_url: str) -> Iterator[None]:
    runtime.setup(database_url)
    yield
    runtime.teardown()


def defer_leaks(count: int, mib: int) -> list[int]:
    """``count`` jobs of ``tests.leak``, committed together."""
    with db.session_scope():
        return [leak_tasks.leak.delay(n, mib=mib).id for n in range(count)]


def rows(query: str) -> list[Any]:
    """The rows of ``query``, read in a transaction of their own."""
    with db.session_scope(new=True) as session:
        return list(session.execute(sa.text(query)).all())


def effects() -> list[Any]:
    """Each job's tenant: its number's name, the lifetime that ran it and its resident size."""
    return rows(
        "SELECT name, custom_config->>'lifetime' AS lifetime, "
        "(custom_config->>'rss')::bigint AS rss, (custom_config->>'pid')::int AS pid "
        "FROM tenants WHERE name LIKE 'leak-%'"
    )


def job_rows() -> list[Any]:
    return rows(
        "SELECT status, attempts, lost_runs, interrupted_runs, runs "
        "FROM procrastinate_jobs WHERE task_name = 'tests.leak'"
    )


def succeeded(expected: int) -> bool:
    return sum(row.status == "succeeded" for row in job_rows()) == expected


def assert_each_job_ran_exactly_once(count: int) -> None:
    names = collections.Counter(row.name for row in effects())
    assert names == {f"leak-{n}": 1 for n in range(count)}, "a job's effect is missing or twice"
    rows = job_rows()
    assert len(rows) == count
    assert {(r.status, r.attempts, r.lost_runs, r.interrupted_runs, r.runs) for r in rows} == {
        ("succeeded", 1, 0, 0, 1)
    }, "every job ran once: none lost with its process, none re-queued by a stall sweep"


def worker_rows() -> list[Any]:
    return rows("SELECT pid, queues, jobs_run, rss_bytes FROM procrastinate_workers")


def test_max_jobs_50_recycles_200_jobs_in_place_and_runs_each_exactly_once(
    database_url: str, workers: list[WorkerProcess], manage: Manage
) -> None:
    worker = WorkerProcess(
        database_url, "--queues", "default", "--concurrency", "default=4", "--max-jobs", "50",
        env=IMPORTS,
    )  # fmt: skip
    workers.append(worker)
    pid = worker.process.pid

    defer_leaks(200, mib=0)
    wait_until(lambda: succeeded(200), timeout=180, message="the 200 jobs did not all succeed")
    recycles = worker.output().count("it ran its 50 jobs (WORKER_MAX_JOBS=50)")
    wait_until(
        lambda: worker.output().count("worker started on") == recycles + 1,
        message="the last recycle did not start a fresh process",
    )

    log = worker.output()
    assert 3 <= recycles <= 4, log
    assert log.count(RECYCLE_LINE) == recycles
    assert_each_job_ran_exactly_once(200)
    per_lifetime = collections.Counter(row.lifetime for row in effects())
    assert len(per_lifetime) >= 4
    assert max(per_lifetime.values()) <= 50, "a process never runs more than --max-jobs jobs"
    assert "stalled" not in log and "re-queued" not in log
    # the same process (pid kept through exec) serves the same queue, as the same command
    starts = [line for line in log.splitlines() if "worker started on" in line]
    assert len(starts) == recycles + 1
    assert all("queues default=4; recycled after 50 jobs" in line for line in starts), starts
    # each recycled life gave the scheduler's lead up before the next one started
    for life in log.split("worker started on")[1:-1]:
        before_exec = life.split(RECYCLE_LINE)[0]
        if "became the scheduler leader" in before_exec:
            assert "scheduler leadership released" in before_exec, life
    wait_until(lambda: len(worker_rows()) == 1, message="the old worker rows were not removed")
    [row] = worker_rows()
    assert (row.pid, row.queues) == (pid, ["default"])
    assert row.jobs_run == 200 - 50 * recycles

    shown = manage("queues", env={"DATABASE_URL": database_url})
    assert shown.returncode == 0, shown.stderr
    line = next(line for line in shown.stdout.splitlines() if f" {pid} " in line)
    assert f"{row.jobs_run}/50" in line and line.rstrip().endswith("default"), shown.stdout

    assert worker.process.poll() is None and worker.process.pid == pid
    assert worker.stop() == 0


def test_a_leaking_task_recycles_the_worker_before_it_is_over_the_limit_by_more_than_one_job(
    database_url: str, workers: list[WorkerProcess]
) -> None:
    # this machine's resident size of an idle worker, written on its row when it registers
    probe = WorkerProcess(database_url, "--queues", "default", env=IMPORTS)
    workers.append(probe)
    wait_until(lambda: any(r.rss_bytes for r in worker_rows()), message="no rss on the row")
    baseline = max(r.rss_bytes for r in worker_rows())
    assert probe.stop() == 0
    limit_mib = baseline // MIB + 6 * LEAK_MIB
    worker = WorkerProcess(
        database_url, "--queues", "default", "--concurrency", "default=1",
        "--max-memory", str(limit_mib), env=IMPORTS,
    )  # fmt: skip
    workers.append(worker)

    defer_leaks(20, mib=LEAK_MIB)
    wait_until(lambda: succeeded(20), timeout=180, message="the 20 jobs did not all succeed")

    log = worker.output()
    assert_each_job_ran_exactly_once(20)
    rows = effects()
    lifetimes = {row.lifetime for row in rows}
    assert len(lifetimes) >= 2, log
    assert log.count(RECYCLE_LINE) >= len(lifetimes) - 1
    assert {row.pid for row in rows} == {worker.process.pid}
    # the largest resident size any job saw: past the limit by one job's allocation at most
    # (plus 4 MiB of the job's own session and row)
    peak = max(row.rss for row in rows)
    print(  # the figures, for the record (pytest -rP shows them)
        f"baseline {baseline / MIB:.0f} MiB, limit {limit_mib} MiB, {LEAK_MIB} MiB per job, "
        f"{len(lifetimes)} lifetimes, peak {peak / MIB:.0f} MiB"
    )
    assert peak <= (limit_mib + LEAK_MIB + 4) * MIB, (peak / MIB, limit_mib, log)
    triggers = [
        float(size)
        for size in re.findall(r"resident memory is (\d+) MiB, over WORKER_MAX_MEMORY_MB=", log)
    ]
    assert triggers and all(limit_mib < size <= limit_mib + LEAK_MIB + 4 for size in triggers)
    print(f"recycled at {triggers} MiB")
    assert "stalled" not in log and "re-queued" not in log
    assert worker.stop() == 0


def test_no_respawn_exits_0_after_draining_for_a_supervisor(
    database_url: str, workers: list[WorkerProcess]
) -> None:
    worker = WorkerProcess(
        database_url, "--queues", "default", "--max-jobs", "3", "--no-respawn", env=IMPORTS
    )
    workers.append(worker)

    defer_leaks(5, mib=0)

    assert worker.process.wait(timeout=60) == 0
    log = worker.output()
    assert "exiting 0 for the supervisor" in log
    assert RECYCLE_LINE not in log
    assert succeeded(3) and len(effects()) == 3
    assert worker_rows() == [], "the drained worker unregistered"


def slow_job_in_a_worker_below_its_start_size(
    database_url: str, workers: list[WorkerProcess], shutdown_timeout: str, seconds: float
) -> tuple[WorkerProcess, AsyncResult]:
    """A worker on dataset and default whose memory limit (1 MiB) is below its size at start
    (it recycles after every job), running a slow job of ``seconds`` on dataset."""
    worker = WorkerProcess(
        database_url, "--queues", "dataset,default", "--max-memory", "1",
        env={**IMPORTS, "WORKER_SHUTDOWN_TIMEOUT": shutdown_timeout},
    )  # fmt: skip
    workers.append(worker)
    assert "it recycles after every job" in worker.output()
    slow = sample_tasks.slow_tenant.delay(f"slow-{seconds}", seconds=seconds)
    wait_until(lambda: slow.status == STARTED, message="the slow job never started")
    return worker, slow


def test_a_sigterm_during_a_recycle_drain_stops_the_worker_for_good(
    database_url: str, workers: list[WorkerProcess]
) -> None:
    worker, slow = slow_job_in_a_worker_below_its_start_size(database_url, workers, "30", 3.0)

    defer_leaks(1, mib=0)  # ends first: the process recycles, draining the slow job
    worker.wait_for_log("recycling this worker process")

    assert worker.stop() == 0
    assert RECYCLE_LINE not in worker.output()
    assert "worker stopped" in worker.output()
    assert slow.get(timeout=1) == "slow-3.0" and tenants("slow-3.0") == 1


def test_a_sigterm_while_the_fresh_process_starts_stops_it_gracefully(
    database_url: str, workers: list[WorkerProcess]
) -> None:
    worker = WorkerProcess(database_url, "--queues", "default", "--max-jobs", "1", env=IMPORTS)
    workers.append(worker)

    defer_leaks(1, mib=0)
    worker.wait_for_log(RECYCLE_LINE)
    # the fresh interpreter is importing now: SIGTERM waits (blocked) for its loop to handle it

    assert worker.stop() == 0
    assert worker.output().rstrip().endswith("action='worker_stop'"), worker.output()


@pytest.mark.timeout(300)
def test_the_embedded_server_keeps_running_across_a_recycle(
    manage: Manage, tmp_path: Any, workers: list[WorkerProcess]
) -> None:
    from worker.embedded import EmbeddedPostgres

    env = {"WORKER_DATA_DIR": str(tmp_path / "data"), **IMPORTS}
    assert manage("migrate", env=env).returncode == 0
    embedded = EmbeddedPostgres(tmp_path / "data")
    worker = WorkerProcess("", "--queues", "default", "--max-jobs", "2", env=env)
    workers.append(worker)
    server_pid = embedded.status().pid
    assert server_pid is not None

    for n in range(4):
        deferred = manage("defer", "tests.leak", "--json", f'{{"n": {n}, "mib": 0}}', env=env)
        assert deferred.returncode == 0, deferred.stderr
    try:  # three lives: two recycles after two jobs each (slow on a loaded machine)
        wait_until(lambda: worker.output().count("worker started on") >= 3, timeout=240)
    except AssertionError:
        said = worker.output()[-4000:]
        raise AssertionError(f"not recycled twice; the worker said:\n{said}") from None

    status = embedded.status()
    assert status.running and status.pid == server_pid, "the server was stopped and started"
    assert worker.process.pid in status.attached_pids
    assert worker.stop() == 0
    assert not embedded.status().running, "the last user still stops it when it ends"
    assert os.path.isdir(tmp_path / "data")


def test_a_job_outliving_the_recycle_drain_is_left_to_recovery_and_runs_again_once(
    database_url: str, workers: list[WorkerProcess]
) -> None:
    # longer than the drain (0 s + 5 s of grace): the recycle leaves it, as a crash would
    worker, slow = slow_job_in_a_worker_below_its_start_size(database_url, workers, "0", 8.0)

    defer_leaks(1, mib=0)

    assert slow.get(timeout=90) == "slow-8.0"
    log = worker.output()
    assert "still running after the shutdown timeout" in log
    assert RECYCLE_LINE in log, "the process was replaced, not ended"
    assert tenants("slow-8.0") == 1
    [row] = rows(f"SELECT runs, lost_runs, attempts FROM procrastinate_jobs WHERE id = {slow.id}")
    assert (row.runs, row.lost_runs, row.attempts) == (2, 1, 1)
    assert worker.process.poll() is None
    assert worker.stop() == 0
