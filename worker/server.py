"""The worker process: one procrastinate worker per queue, each with its own concurrency.

All of them share one event loop, one procrastinate pool and one SQLAlchemy pool sized for the sum
of concurrencies, and a thread pool with a thread per concurrent job (sync tasks run there).
Beside them run two side loops: heartbeats that go on while the workers drain (procrastinate stops
its own heartbeat first, which would make still-running jobs look stalled), and the sweep that
re-queues jobs of dead workers (``worker.recovery``).

SIGTERM/SIGINT stop fetching and let running jobs finish within ``shutdown_timeout``; then the
process exits 0.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import NoReturn

from worker import db, queues, recovery, runtime
from worker.app import app
from worker.config import Settings
from worker.jobs.worker import TaskLayerWorker

logger = logging.getLogger(__name__)

#: Connections beyond the sum of concurrencies: fetch loops, heartbeats, finishing jobs.
POOL_HEADROOM = 4
#: Seconds past ``shutdown_timeout`` given to procrastinate's own abort before leaving jobs.
SHUTDOWN_GRACE = 5.0


class WorkerStopped(Exception):
    """A queue's worker stopped without being asked to (its logs say why)."""


@dataclass(frozen=True, kw_only=True)
class WorkerPlan:
    """Which queues one process serves, how many jobs of each it runs at once, and its timings."""

    concurrency: Mapping[str, int]
    shutdown_timeout: float
    heartbeat_interval: float
    stalled_after: float
    recovery_interval: float
    #: Extra modules that define tasks, imported before the workers start.
    import_paths: Sequence[str] = ()

    @classmethod
    def build(
        cls, settings: Settings, *, queues: Sequence[str], overrides: Mapping[str, int]
    ) -> WorkerPlan:
        """The plan for ``queues``: built-in concurrency with ``overrides`` applied."""
        return cls(
            concurrency={name: overrides.get(name, _default(name)) for name in queues},
            shutdown_timeout=settings.shutdown_timeout,
            heartbeat_interval=settings.heartbeat_interval,
            stalled_after=settings.stalled_after,
            recovery_interval=settings.recovery_interval,
            import_paths=settings.import_paths,
        )

    @property
    def total_concurrency(self) -> int:
        """Jobs this process may run at once, over every queue."""
        return sum(self.concurrency.values())


def _default(name: str) -> int:
    return queues.DEFAULT_CONCURRENCY[name]


async def serve(database_url: str, plan: WorkerPlan, settings: Settings) -> None:
    """Run until SIGTERM/SIGINT, then drain and return."""
    loop = asyncio.get_running_loop()
    # sync tasks run in the loop's default executor: a thread per concurrent job
    loop.set_default_executor(
        ThreadPoolExecutor(max_workers=plan.total_concurrency + 1, thread_name_prefix="task")
    )
    runtime.setup(
        database_url,
        pool_size=plan.total_concurrency + 1,
        procrastinate_pool_size=plan.total_concurrency + POOL_HEADROOM,
        worker=True,
        settings=settings,
    )
    app.import_paths = [*app.import_paths, *plan.import_paths]
    try:
        app.perform_import_paths()  # type: ignore[no-untyped-call]
        async with app.open_async():
            await _run(plan)
    finally:
        runtime.teardown()


async def _run(plan: WorkerPlan) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await _run_until(stop, plan)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


async def _run_until(stop: asyncio.Event, plan: WorkerPlan) -> None:
    workers = [
        TaskLayerWorker(
            app=app,
            queues=[name],
            concurrency=concurrency,
            name=name,
            install_signal_handlers=False,
            shutdown_graceful_timeout=plan.shutdown_timeout,
            update_heartbeat_interval=plan.heartbeat_interval,
            stalled_worker_timeout=plan.stalled_after,
        )
        for name, concurrency in plan.concurrency.items()
    ]
    running = [
        asyncio.create_task(w.run(), name=f"worker:{w.worker_name}")  # type: ignore[no-untyped-call]
        for w in workers
    ]
    side = [
        asyncio.create_task(_beat(workers, plan.heartbeat_interval), name="heartbeats"),
        asyncio.create_task(_recover(plan), name="recovery"),
    ]
    logger.info(
        "worker started on %s",
        ", ".join(f"{name}={n}" for name, n in plan.concurrency.items()),
        extra={"action": "worker_start"},
    )
    waiter = asyncio.create_task(stop.wait())
    await asyncio.wait([waiter, *running], return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    ended = [w.worker_name for w, task in zip(workers, running, strict=True) if task.done()]
    if stop.is_set():
        logger.info("stop requested: draining running jobs", extra={"action": "worker_drain"})
    else:
        logger.error(
            "worker(s) %s stopped on their own: stopping the others",
            ", ".join(map(str, ended)),
            extra={"action": "worker_lost"},
        )
    for task in running:
        task.cancel()
    _, pending = await asyncio.wait(running, timeout=plan.shutdown_timeout + SHUTDOWN_GRACE)
    if pending:
        _abandon_running_jobs(
            [
                str(w.worker_name)
                for w, task in zip(workers, running, strict=True)
                if task in pending
            ]
        )
    results = await asyncio.gather(*running, return_exceptions=True)
    for task in side:
        task.cancel()
    await asyncio.gather(*side, return_exceptions=True)
    failures = [
        result
        for result in results
        if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError)
    ]
    if failures:
        raise failures[0]
    if not stop.is_set():
        # e.g. a side task (heartbeat, LISTEN) failed on a database outage: exit non-zero so
        # that the supervisor restarts the process
        raise WorkerStopped(f"the worker for queue(s) {', '.join(map(str, ended))} stopped")
    logger.info("worker stopped", extra={"action": "worker_stop"})


def _abandon_running_jobs(queues: list[str]) -> NoReturn:
    """Exit now, leaving jobs that outlived the shutdown timeout to the recovery sweep.

    Sync tasks cannot be interrupted mid-step, and the interpreter would wait for their threads
    at exit. Leaving is as safe as a SIGKILL: their transactions roll back, their heartbeat
    stops, and another worker re-queues them after ``WORKER_STALLED_AFTER``; they resume by
    their rows' state.
    """
    logger.warning(
        "jobs of %s still running after the shutdown timeout: exiting without them; "
        "the recovery sweep of another worker will run them again",
        ", ".join(queues),
        extra={"action": "worker_abandon_jobs"},
    )
    logging.shutdown()
    os._exit(0)


async def _beat(workers: list[TaskLayerWorker], interval: float) -> None:
    """Keep every worker's heartbeat fresh until the process is done draining."""
    while True:
        await asyncio.sleep(interval)
        for w in workers:
            if w.worker_id is None:
                continue
            try:
                await app.job_manager.update_heartbeat(w.worker_id)
            except Exception:
                logger.exception(
                    "heartbeat of worker %s failed",
                    w.worker_id,
                    extra={"action": "heartbeat_failed", "worker_id": w.worker_id},
                )


async def _recover(plan: WorkerPlan) -> None:
    """Sweep for stalled jobs every ``recovery_interval`` seconds."""
    while True:
        await asyncio.sleep(plan.recovery_interval)
        try:
            await asyncio.to_thread(_sweep_once, plan.stalled_after)
        except Exception:
            logger.exception("stalled-job sweep failed", extra={"action": "recovery_failed"})


def _sweep_once(stalled_after: float) -> None:
    with db.session_scope(new=True) as session:
        recovery.sweep(session, stalled_after=stalled_after)
