"""The worker process: one fetch loop per queue, each with its own concurrency.

They share one event loop, one SQLAlchemy pool sized for the sum of concurrencies (the jobs'
transactions) and a thread pool with a thread per concurrent job; see ``worker.jobs.runner`` for
the loops, the listener, the heartbeat (which goes on while the process drains, so that running
jobs never look stalled) and the recovery sweep.

SIGTERM/SIGINT stop fetching and let running jobs finish within ``shutdown_timeout``; then the
process exits 0. The periodic scheduler (``worker.maintenance.scheduler``) runs beside the fetch
loops and stops first, so that another process leads while this one drains.

Recycling (``WORKER_MAX_JOBS``, ``WORKER_MAX_MEMORY_MB``, ``worker.jobs.recycling``) drains the
same way; :func:`serve` then returns ``True`` and the caller replaces the process with a fresh one
(or exits 0 under a supervisor, ``--no-respawn``). A SIGTERM meanwhile wins: no replacement.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import NoReturn

from worker import db, queues, runtime
from worker.app import app
from worker.config import Settings
from worker.jobs import recycling
from worker.jobs.runner import Runner, RunnerOptions
from worker.maintenance import schedule
from worker.maintenance.scheduler import Scheduler

logger = logging.getLogger(__name__)

#: Seconds past ``shutdown_timeout`` before jobs still running are left to the recovery sweep.
SHUTDOWN_GRACE = 5.0


class WorkerStopped(Exception):
    """The worker's fetch loops stopped without being asked to (the log says why)."""


@dataclass(frozen=True, kw_only=True)
class WorkerPlan:
    """Which queues one process serves, how many jobs of each it runs at once, and its timings."""

    concurrency: Mapping[str, int]
    shutdown_timeout: float
    heartbeat_interval: float
    stalled_after: float
    recovery_interval: float
    #: Lost runs in which a job ran alone before it is failed as poison.
    max_lost_runs: int
    #: Extra modules that define tasks, imported before the workers start.
    import_paths: Sequence[str] = ()
    #: When the process replaces itself (``WORKER_MAX_JOBS``, ``WORKER_MAX_MEMORY_MB``).
    recycle: recycling.RecyclePolicy = field(default_factory=recycling.RecyclePolicy)
    #: The environment a recycled process is started again with; ``None``: exit 0 instead
    #: (``--no-respawn``, under a supervisor).
    respawn_environ: Mapping[str, str] | None = field(default=None, repr=False)

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
            max_lost_runs=settings.max_lost_runs,
            import_paths=settings.import_paths,
            recycle=recycling.RecyclePolicy(
                max_jobs=settings.max_jobs, max_memory_mb=settings.max_memory_mb
            ),
        )

    def runner_options(self) -> RunnerOptions:
        """What the job loop needs of this plan."""
        return RunnerOptions(
            concurrency=self.concurrency,
            heartbeat_interval=self.heartbeat_interval,
            stalled_after=self.stalled_after,
            recovery_interval=self.recovery_interval,
            max_lost_runs=self.max_lost_runs,
            recycle=self.recycle,
        )

    @property
    def total_concurrency(self) -> int:
        """Jobs this process may run at once, over every queue."""
        return sum(self.concurrency.values())


def _scheduler(database_url: str, settings: Settings) -> Scheduler | None:
    """The periodic scheduler of this process, unless ``WORKER_SCHEDULER``/``--no-scheduler``
    turn it off (``worker.maintenance.scheduler``)."""
    return Scheduler(database_url, schedule.table(settings)) if settings.scheduler else None


def _default(name: str) -> int:
    return queues.DEFAULT_CONCURRENCY[name]


async def serve(database_url: str, plan: WorkerPlan, settings: Settings) -> bool:
    """Run until SIGTERM/SIGINT or a recycling limit, then drain; return whether the process
    is to be replaced (a limit was reached and no signal asked it to stop)."""
    loop = asyncio.get_running_loop()
    # tasks run in the loop's default executor: a thread per concurrent job, each keeping its
    # database connection from one job to the next
    executor = ThreadPoolExecutor(
        max_workers=plan.total_concurrency, thread_name_prefix="task",
        initializer=db.keep_connections,
    )  # fmt: skip
    loop.set_default_executor(executor)
    runtime.setup(
        database_url,
        pool_size=plan.total_concurrency + 1,
        procrastinate_pool_size=2,
        worker=True,
        settings=settings,
    )
    app.import_paths = [*app.import_paths, *plan.import_paths]
    try:
        app.perform_import_paths()  # type: ignore[no-untyped-call]
        scheduler = _scheduler(database_url, settings)
        return await _run(Runner(database_url, plan.runner_options(), executor), plan, scheduler)
    finally:
        db.give_back_kept_connections()
        runtime.teardown()


async def _run(runner: Runner, plan: WorkerPlan, scheduler: Scheduler | None = None) -> bool:
    loop = asyncio.get_running_loop()
    signalled = asyncio.Event()

    def on_signal() -> None:
        signalled.set()
        runner.stop()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    if recycling.stop_signalled():
        on_signal()  # received while this recycled process was starting
    try:
        await _run_until_stopped(runner, plan, scheduler, signalled)
    finally:
        recycle = runner.recycler.reason is not None and not signalled.is_set()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        if recycle:
            recycling.note_stop_signals()  # a SIGTERM before the exec cancels it
    return recycle


async def _run_until_stopped(
    runner: Runner,
    plan: WorkerPlan,
    scheduler: Scheduler | None = None,
    signalled: asyncio.Event | None = None,
) -> None:
    serving = asyncio.create_task(runner.run(), name="runner")
    if scheduler is not None:
        scheduler.start()
    logger.info(
        "worker started on %s, queues %s%s",
        runtime.current().database,
        ", ".join(f"{name}={n}" for name, n in plan.concurrency.items()),
        _recycling_limits(plan.recycle),
        extra={"action": "worker_start"},
    )
    warning = runner.recycler.start_warning()
    if warning:
        logger.warning(warning, extra={"action": "worker_recycle_limit_low"})
    failed = True
    try:
        await serving
        failed = False
    except Exception as exc:
        logger.exception(
            "the worker's fetch loops failed: stopping", extra={"action": "worker_lost"}
        )
        runner.stop()
        raise WorkerStopped(f"the worker's fetch loops failed: {exc}") from exc
    finally:
        if scheduler is not None:
            await scheduler.stop()  # leadership released before the drain: a standby fires
        logger.info("draining running jobs", extra={"action": "worker_drain"})
        if not await runner.drain(plan.shutdown_timeout + SHUTDOWN_GRACE):
            recycle = runner.recycler.reason is not None and not (signalled and signalled.is_set())
            respawn = plan.respawn_environ if recycle and not failed else None
            _abandon_running_jobs(runner.running, exit_code=1 if failed else 0, respawn=respawn)
        await runner.close()
    logger.info("worker stopped", extra={"action": "worker_stop"})


def _abandon_running_jobs(
    count: int, *, exit_code: int, respawn: Mapping[str, str] | None = None
) -> NoReturn:
    """Exit now, leaving jobs that outlived the shutdown timeout to the recovery sweep.

    Sync tasks cannot be interrupted mid-step, and the interpreter would wait for their threads
    at exit. Leaving is as safe as a SIGKILL: their transactions roll back, their heartbeat
    stops, and another worker re-queues them after ``WORKER_STALLED_AFTER``; they resume by
    their rows' state. ``exit_code`` is 0 after a requested stop, 1 after a failure (so that a
    supervisor restarts the process). A recycling process is replaced with a fresh one
    (``respawn``: its environment) instead of exiting.
    """
    logger.warning(
        "%d job(s) still running after the shutdown timeout: exiting without them; "
        "the recovery sweep of another worker will run them again",
        count,
        extra={"action": "worker_abandon_jobs"},
    )
    if respawn is not None:
        recycling.respawn(respawn)
    logging.shutdown()
    os._exit(exit_code)


def _recycling_limits(policy: recycling.RecyclePolicy) -> str:
    """The start-up line's tail: when this process replaces itself, if ever."""
    limits = []
    if policy.max_jobs is not None:
        limits.append(f"{policy.max_jobs} jobs")
    if policy.max_memory_mb is not None:
        limits.append(f"{policy.max_memory_mb} MiB resident")
    return f"; recycled after {' or '.join(limits)}" if limits else ""
