"""Jobs taken ahead of free slots: only for short jobs, never lost nor counted lost on a stop."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import sqlalchemy as sa

from tests import sample_tasks
from tests.inprocess import drain
from worker import db, queues, runtime
from worker.jobs import execution, group, runner
from worker.jobs.runner import Runner, RunnerOptions

CONCURRENCY = 2


@pytest.fixture(autouse=True)
def task_layer(database_url: str) -> Iterator[None]:
    runtime.setup(database_url)
    yield
    runtime.teardown()


@pytest.fixture
def fetch_limits(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The number of jobs each fetch of the runner asked for."""
    limits: list[int] = []
    fetch = Runner._fetch

    async def recorded(self: Runner, queue_names: list[str], limit: int) -> Any:
        limits.append(limit)
        return await fetch(self, queue_names, limit)

    monkeypatch.setattr(Runner, "_fetch", recorded)
    return limits


def options() -> RunnerOptions:
    return RunnerOptions(
        concurrency={queues.DEFAULT: CONCURRENCY, queues.DATASET: CONCURRENCY},
        heartbeat_interval=1,
        stalled_after=60,
        recovery_interval=60,
        max_lost_runs=3,
        poll_interval=0.2,
        listen=False,
        recover=False,
    )


def statuses() -> dict[str, int]:
    with db.session_scope(new=True) as session:
        rows = session.execute(
            sa.text("SELECT status::text, count(*) FROM procrastinate_jobs GROUP BY 1")
        )
        return {status: count for status, count in rows}


def lost_or_held() -> int:
    with db.session_scope(new=True) as session:
        return session.execute(
            sa.text(
                "SELECT count(*) FROM procrastinate_jobs"
                " WHERE lost_runs > 0 OR run_alone OR (status = 'todo' AND worker_id IS NOT NULL)"
            )
        ).scalar_one()


def serve_until(database_url: str, done: int) -> None:
    """Run a runner until ``done`` jobs succeeded, then stop it as SIGTERM does."""
    assert serve_with(database_url, ThreadPoolExecutor(max_workers=CONCURRENCY * 2), done)


@pytest.fixture
def released(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The jobs the runner put back without running them."""
    jobs: list[int] = []
    release = Runner._release

    async def recorded(self: Runner, run: Any) -> None:
        jobs.append(run.job_id)
        await release(self, run)

    monkeypatch.setattr(Runner, "_release", recorded)
    return jobs


def test_short_jobs_are_taken_ahead_and_those_not_started_go_back_untouched(
    database_url: str, fetch_limits: list[int], released: list[int]
) -> None:
    # 5 ms jobs: short enough to be taken ahead, long enough for some to wait at the stop
    result = group(sample_tasks.slow_tenant.s(f"t{x}", 0.005) for x in range(200)).apply_async()

    serve_until(database_url, done=40)

    assert max(fetch_limits) > CONCURRENCY, "short jobs: fetches ask for more than free slots"
    assert released, "jobs taken ahead were waiting when the runner stopped"
    left = statuses()
    assert "doing" not in left, "jobs taken ahead and not started are put back"
    assert left.get("todo", 0) >= len(released)
    assert lost_or_held() == 0, "a job put back is not a lost run, nor a suspect"
    drain()
    assert result.get(timeout=5) == [f"t{x}" for x in range(200)]
    assert statuses() == {"succeeded": 200}


def test_long_jobs_are_not_taken_ahead(
    database_url: str, fetch_limits: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner, "PREFETCH_BELOW", 0.01)
    for index in range(12):
        sample_tasks.slow_tenant.delay(f"slow-{index}", 0.05)

    serve_until(database_url, done=8)

    assert fetch_limits and max(fetch_limits) <= CONCURRENCY
    assert "doing" not in statuses()
    assert lost_or_held() == 0


def test_while_jobs_taken_ahead_wait_a_fetch_brings_many(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    concurrency = 6  # jobs taken ahead: up to 6 more; a fetch while some wait asks for >= 3
    # each fetch: (limit, jobs taken ahead still waiting, whether the last fetch found more)
    asked: list[tuple[int, int, bool]] = []
    fetch = Runner._fetch

    async def recorded(self: Runner, queue_names: list[str], limit: int) -> Any:
        name = queue_names[0]
        asked.append((limit, len(self._ready[name]), self._busy_fetch[name]))
        return await fetch(self, queue_names, limit)

    monkeypatch.setattr(Runner, "_fetch", recorded)
    monkeypatch.setattr(
        "tests.integration.test_prefetch.options",
        lambda: RunnerOptions(
            concurrency={queues.DATASET: concurrency}, heartbeat_interval=1, stalled_after=60,
            recovery_interval=60, max_lost_runs=3, poll_interval=0.2, listen=False,
            recover=False,
        ),
    )  # fmt: skip
    result = group(sample_tasks.slow_tenant.s(f"m{x}", 0.003) for x in range(150)).apply_async()

    serve_until(database_url, done=150)

    while_waiting = [limit for limit, waiting, more in asked if waiting and more]
    assert while_waiting, "fetches were made while jobs taken ahead waited for a slot"
    assert min(while_waiting) >= concurrency // 2, "no fetch for one or two jobs at a time"
    assert result.get(timeout=5) == [f"m{x}" for x in range(150)]


class CountingExecutor(ThreadPoolExecutor):
    """A thread pool that counts the jobs handed to it by the event loop."""

    submitted = 0

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        self.submitted += 1
        return super().submit(fn, *args, **kwargs)


def serve_with(database_url: str, executor: ThreadPoolExecutor, done: int) -> bool:
    """Run a runner on ``executor`` until ``done`` jobs succeeded; whether it drained."""

    async def scenario() -> bool:
        worker = Runner(database_url, options(), executor)
        serving = asyncio.create_task(worker.run())
        while (await asyncio.to_thread(statuses)).get("succeeded", 0) < done:
            await asyncio.sleep(0.01)
        worker.stop()
        await serving
        drained = await worker.drain(10)
        await worker.close()
        return drained

    with executor:
        return asyncio.run(scenario())


def test_a_thread_done_with_a_job_goes_on_with_the_next_one_taken_ahead(
    database_url: str,
) -> None:
    result = group(sample_tasks.slow_tenant.s(f"c{x}", 0.002) for x in range(120)).apply_async()
    executor = CountingExecutor(max_workers=CONCURRENCY * 2)

    assert serve_with(database_url, executor, done=120)

    assert result.get(timeout=5) == [f"c{x}" for x in range(120)]
    # the loop handed over far fewer jobs than ran: the threads took the others themselves
    assert executor.submitted < 120 / 2, executor.submitted
    assert statuses() == {"succeeded": 120}
    assert lost_or_held() == 0


def test_a_fault_of_the_worker_in_a_task_thread_is_logged_and_the_job_left_to_recovery(
    database_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    jobs = [sample_tasks.slow_tenant.delay(f"f{x}", 0.001) for x in range(30)]
    faulty = jobs[7].id
    run_job = execution.run_job

    def failing(run: Any) -> Any:
        if run.job_id == faulty:
            raise RuntimeError("worker fault")
        return run_job(run)

    monkeypatch.setattr(execution, "run_job", failing)

    assert serve_with(database_url, ThreadPoolExecutor(max_workers=CONCURRENCY), done=29)

    failed = [r for r in caplog.records if getattr(r, "action", None) == "job_run_failed"]
    assert [r.job_id for r in failed] == [faulty]  # type: ignore[attr-defined]
    assert failed[0].exc_info is not None and "worker fault" in str(failed[0].exc_info[1])
    # the job stays taken by the worker: the recovery sweep runs it again once the worker is gone
    assert statuses() == {"succeeded": 29, "doing": 1}
