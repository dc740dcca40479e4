"""The runner in-process: a job whose fetch answer was lost is put back and run."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa

from tests import sample_tasks
from worker import db, queues, runtime
from worker.jobs import SUCCESS
from worker.jobs.runner import Runner, RunnerOptions


@pytest.fixture(autouse=True)
def task_layer(database_url: str) -> Iterator[None]:
    runtime.setup(database_url)
    yield
    runtime.teardown()


def test_a_job_held_in_the_database_but_not_run_is_put_back_and_run(database_url: str) -> None:
    result = sample_tasks.add.delay(2, 2)
    options = RunnerOptions(
        concurrency={queues.DEFAULT: 2},
        heartbeat_interval=0.2,
        stalled_after=60,
        recovery_interval=60,
        max_lost_runs=3,
        poll_interval=0.2,
        listen=False,
        recover=False,
    )

    async def scenario() -> str:
        with ThreadPoolExecutor(max_workers=2) as executor:
            runner = Runner(database_url, options, executor)
            await runner._open()  # registered, not fetching yet
            with db.session_scope() as session:
                # what a fetch leaves when its commit went through and its answer was lost
                session.execute(
                    sa.text(
                        "UPDATE procrastinate_jobs SET status = 'doing', worker_id = :worker, "
                        "runs = 1, run_started_at = now() - interval '1 minute' WHERE id = :id"
                    ),
                    {"worker": runner.worker_id, "id": result.id},
                )
            serving = asyncio.create_task(runner.run())
            for _ in range(200):
                if await asyncio.to_thread(lambda: result.status) == SUCCESS:
                    break
                await asyncio.sleep(0.05)
            runner.stop()
            await serving
            await runner.drain(10)
            await runner.close()
            return await asyncio.to_thread(lambda: result.status)

    assert asyncio.run(scenario()) == SUCCESS
    assert result.get(timeout=1) == 4


def test_the_end_of_a_job_holding_a_lock_wakes_its_queue_in_every_process(
    database_url: str,
) -> None:
    import json

    import psycopg

    from tests.inprocess import drain

    with psycopg.connect(database_url, autocommit=True) as listener:
        listener.execute('LISTEN "procrastinate_queue_v1#dataset"')
        result = sample_tasks.slow_tenant.delay("locked", seconds=0)  # lock tenant-name:{name}
        drain(["dataset"])
        assert result.status == SUCCESS
        wakes = [
            json.loads(notify.payload)
            for notify in listener.notifies(timeout=1)
            if json.loads(notify.payload).get("job_id") == result.id
        ]

    assert len(wakes) == 2, "one when it was deferred, one when its lock was released"
