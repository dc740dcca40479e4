"""Running the real worker inside the test process, until nothing is left to fetch."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from worker import db, runtime
from worker import queues as queue_names
from worker.jobs.runner import Runner, RunnerOptions


def drain(queues: list[str] | None = None, *, max_lost_runs: int = 3) -> None:
    """Run the worker's job loop (every queue, or ``queues``) in this process until nothing is
    fetchable and nothing runs."""
    names = queues or list(queue_names.ALL_QUEUES)
    options = RunnerOptions(
        concurrency={name: queue_names.DEFAULT_CONCURRENCY.get(name, 2) for name in names},
        heartbeat_interval=10,
        stalled_after=60,
        recovery_interval=15,
        max_lost_runs=max_lost_runs,
        listen=False,
        recover=False,
    )

    async def run() -> None:
        # task threads as ``manage.py worker``'s: each keeps its connection between jobs
        with ThreadPoolExecutor(
            max_workers=8, thread_name_prefix="task", initializer=db.keep_connections
        ) as executor:
            await Runner(runtime.current().database_url, options, executor).run_until_idle()

    try:
        asyncio.run(run())
    finally:
        db.give_back_kept_connections()
