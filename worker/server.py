"""The worker process: one procrastinate worker per queue, each with its own concurrency.

All of them share one event loop, one procrastinate pool and one SQLAlchemy pool sized for the sum
of concurrencies, and a thread pool with a thread per concurrent job (sync tasks run there).
SIGTERM/SIGINT stop fetching and let running jobs finish within ``shutdown_graceful_timeout``.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from worker import queues, runtime
from worker.app import app

logger = logging.getLogger(__name__)

#: Connections beyond the sum of concurrencies: fetch loops, heartbeats, finishing jobs.
POOL_HEADROOM = 4
#: Seconds running jobs get to finish after SIGTERM before they are aborted.
SHUTDOWN_GRACEFUL_TIMEOUT = 30.0


@dataclass(frozen=True, kw_only=True)
class WorkerPlan:
    """Which queues one process serves, and how many jobs of each it runs at once."""

    concurrency: Mapping[str, int]
    shutdown_graceful_timeout: float = SHUTDOWN_GRACEFUL_TIMEOUT
    #: Extra modules that define tasks, imported before the workers start.
    import_paths: Sequence[str] = ()

    @classmethod
    def build(
        cls,
        *,
        queues: Sequence[str],
        overrides: Mapping[str, int],
        import_paths: Sequence[str] = (),
    ) -> WorkerPlan:
        """Default concurrencies for ``queues``, with per-queue ``overrides`` applied."""
        return cls(
            concurrency={name: overrides.get(name, _default(name)) for name in queues},
            import_paths=tuple(import_paths),
        )

    @property
    def total_concurrency(self) -> int:
        """Jobs this process may run at once, over every queue."""
        return sum(self.concurrency.values())


def _default(name: str) -> int:
    return queues.DEFAULT_CONCURRENCY[name]


async def serve(database_url: str, plan: WorkerPlan) -> None:
    """Run until SIGTERM/SIGINT, then drain and return."""
    loop = asyncio.get_running_loop()
    # sync tasks run in the loop's default executor: a thread per concurrent job
    loop.set_default_executor(
        ThreadPoolExecutor(max_workers=plan.total_concurrency, thread_name_prefix="task")
    )
    runtime.setup(
        database_url,
        pool_size=plan.total_concurrency + 1,
        procrastinate_pool_size=plan.total_concurrency + POOL_HEADROOM,
        worker=True,
    )
    app.import_paths = [*app.import_paths, *plan.import_paths]
    try:
        await _run_workers(plan)
    finally:
        runtime.teardown()


async def _run_workers(plan: WorkerPlan) -> None:
    loop = asyncio.get_running_loop()
    async with app.open_async():
        workers = [
            asyncio.create_task(
                app.run_worker_async(
                    queues=[name],
                    concurrency=concurrency,
                    name=name,
                    install_signal_handlers=False,
                    shutdown_graceful_timeout=plan.shutdown_graceful_timeout,
                ),
                name=f"worker:{name}",
            )
            for name, concurrency in plan.concurrency.items()
        ]
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        logger.info(
            "worker started on %s",
            ", ".join(f"{name}={n}" for name, n in plan.concurrency.items()),
            extra={"action": "worker_start"},
        )
        waiter = asyncio.create_task(stop.wait())
        await asyncio.wait([waiter, *workers], return_when=asyncio.FIRST_COMPLETED)
        for task in workers:
            task.cancel()
        results = await asyncio.gather(*workers, return_exceptions=True)
        waiter.cancel()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    failures = [
        r
        for r in results
        if isinstance(r, BaseException) and not isinstance(r, asyncio.CancelledError)
    ]
    if failures:
        raise failures[0]
    logger.info("worker stopped", extra={"action": "worker_stop"})
