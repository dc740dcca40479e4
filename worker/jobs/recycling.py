"""Worker recycling: Celery's ``max_tasks_per_child`` and ``max_memory_per_child`` in one process.

A process that has run ``WORKER_MAX_JOBS`` jobs, or whose resident memory went over
``WORKER_MAX_MEMORY_MB``, stops fetching, lets its running jobs finish (the graceful drain of
SIGTERM) and replaces itself with a fresh process: :func:`respawn`, an ``execve`` of the same
interpreter with the same command line and environment, so that no supervisor is needed. Both
limits count per process lifetime.

The job limit is exact: the fetch loops never take more jobs than are left
(:meth:`Recycler.reserve`), and the process recycles once the last of them has ended (stopping
when it was taken would send back a job that waits to run alone, see ``runner``). The memory is
read after a job ends (as Celery does), cheaply and paced: at most once a second while far from
the limit; closer to it than twice the growth seen per job, after every job, so that a leaking
process recycles before it is over the limit by more than the allocations of the jobs it was
running.
"""

from __future__ import annotations

import functools
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import psutil
import sqlalchemy as sa
from sqlalchemy import orm

from worker.domain import sql

logger = logging.getLogger(__name__)

MIB = 1024 * 1024
#: The signals that stop a worker: blocked across the exec of a recycle (see :func:`respawn`).
STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT})
#: Seconds between two reads of the resident memory while it is far from the limit.
MEMORY_READ_INTERVAL = 1.0


@dataclass(frozen=True, kw_only=True)
class RecyclePolicy:
    """When a process replaces itself; ``None`` turns a limit off (the default)."""

    #: Jobs a process runs before it recycles (``WORKER_MAX_JOBS``, ``--max-jobs``).
    max_jobs: int | None = None
    #: Resident memory in MiB after which it recycles (``WORKER_MAX_MEMORY_MB``, ``--max-memory``).
    max_memory_mb: int | None = None


def resident_bytes() -> int:
    """This process's resident set size, in bytes (one read of ``/proc/self/statm``)."""
    return int(_process(os.getpid()).memory_info().rss)


@functools.cache
def _process(pid: int) -> psutil.Process:
    return psutil.Process(pid)  # built once: building it reads /proc as well


class MemoryGauge:
    """The process's resident memory, read when it may matter, at most once a second otherwise.

    Parameters
    ----------
    limit:
        Bytes after which the process recycles.
    read, clock:
        The resident size in bytes and a monotonic clock (tests give fakes).
    """

    def __init__(
        self,
        limit: int,
        *,
        read: Callable[[], int] = resident_bytes,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self._read = read
        self._clock = clock
        self.rss = read()
        self._read_at = clock()
        self._jobs_since = 0
        #: Largest growth per job seen lately (halved at every read that saw less).
        self._growth_per_job: float | None = None
        self.reads = 1

    def after_job(self) -> int:
        """A job ended: the resident size, read again if it may have come near the limit."""
        self._jobs_since += 1
        if self._due():
            self._measure()
        return self.rss

    def now(self) -> int:
        """The resident size, read again if the last read is a second old."""
        if self._clock() - self._read_at >= MEMORY_READ_INTERVAL:
            self._measure()
        return self.rss

    def _due(self) -> bool:
        if self._clock() - self._read_at >= MEMORY_READ_INTERVAL:
            return True
        if self._growth_per_job is None:
            return True  # no job measured yet: the first one tells how much a job takes
        # close to the limit: read after every job
        return self.rss + 2 * self._growth_per_job * self._jobs_since >= self.limit

    def _measure(self) -> None:
        rss = self._read()
        if self._jobs_since:
            growth = max(0.0, (rss - self.rss) / self._jobs_since)
            previous = self._growth_per_job or 0.0
            self._growth_per_job = max(growth, previous / 2)
        self.rss, self._read_at, self._jobs_since = rss, self._clock(), 0
        self.reads += 1


class Recycler:
    """Counts this process's jobs, watches its memory and says when it must recycle.

    ``on_due`` is called once, when a limit is reached: the runner stops fetching then.
    """

    def __init__(
        self,
        policy: RecyclePolicy,
        *,
        on_due: Callable[[], None],
        gauge: MemoryGauge | None = None,
    ) -> None:
        self.policy = policy
        self._on_due = on_due
        limit = policy.max_memory_mb
        self._gauge = gauge if gauge or limit is None else MemoryGauge(limit * MIB)
        #: Jobs run (ended) since the process started.
        self.jobs_run = 0
        #: Jobs taken since the process started, and jobs being taken by a fetch in flight.
        self._taken = 0
        self._reserved = 0
        #: Why the process recycles; ``None`` while it does not.
        self.reason: str | None = None

    def reserve(self, free: int) -> int:
        """How many of ``free`` slots a fetch may fill: never past ``max_jobs`` (0 when none)."""
        if self.policy.max_jobs is None:
            return free
        allowed = max(0, min(free, self.policy.max_jobs - self._taken - self._reserved))
        self._reserved += allowed
        return allowed

    def settle(self, reserved: int, taken: int) -> bool:
        """A fetch that reserved ``reserved`` slots took ``taken`` jobs; return whether slots
        were given back (another queue may take them)."""
        if self.policy.max_jobs is None:
            return False
        self._reserved -= reserved
        self._taken += taken
        return taken < reserved

    def job_ended(self) -> None:
        """Count a job that left the runner; check the job limit and the memory."""
        self.jobs_run += 1
        if self.policy.max_jobs is not None and self.jobs_run >= self.policy.max_jobs:
            self._due(
                "it ran its %d jobs (WORKER_MAX_JOBS=%d)",
                self.jobs_run, self.policy.max_jobs, action="worker_recycle_max_jobs",
            )  # fmt: skip
        elif self._gauge is not None:
            self._check_memory(self._gauge.after_job())

    def check(self) -> None:
        """Check the memory between jobs (a long job may grow): at most once a second."""
        if self._gauge is not None:
            self._check_memory(self._gauge.now())

    def start_warning(self) -> str | None:
        """Why the memory limit is too low for this process, if it is over it already."""
        if self._gauge is None or self._gauge.rss <= self._gauge.limit:
            return None
        return (
            f"WORKER_MAX_MEMORY_MB={self.policy.max_memory_mb} is below this process's resident "
            f"memory at start ({self._gauge.rss / MIB:.0f} MiB): it recycles after every job"
        )

    def usage(self) -> dict[str, int | None]:
        """What the heartbeat writes: jobs run, resident bytes and the limits."""
        rss = self._gauge.now() if self._gauge is not None else resident_bytes()
        return {
            "jobs_run": self.jobs_run,
            "rss_bytes": rss,
            "max_jobs": self.policy.max_jobs,
            "max_memory_mb": self.policy.max_memory_mb,
        }

    def _check_memory(self, rss: int) -> None:
        assert self._gauge is not None
        # only after a job: a process whose start-up alone is over the limit runs one job per
        # life instead of replacing itself in a loop (:meth:`start_warning` says so)
        if rss > self._gauge.limit and self.jobs_run:
            self._due(
                "its resident memory is %.0f MiB, over WORKER_MAX_MEMORY_MB=%d, after %d jobs",
                rss / MIB, self.policy.max_memory_mb, self.jobs_run,
                action="worker_recycle_max_memory", rss_bytes=rss,
            )  # fmt: skip

    def _due(self, why: str, *args: object, action: str, **extra: object) -> None:
        if self.reason is not None:
            return
        self.reason = why % args
        logger.warning(
            "recycling this worker process: " + why + "; it stops fetching and lets its running "
            "jobs finish",
            *args,
            extra={"action": action, "jobs_run": self.jobs_run, **extra},
        )
        self._on_due()


def worker_usage(session: orm.Session, stalled_after: float) -> list[Any]:
    """Live workers (beat within ``stalled_after`` seconds): pid, host, queues, jobs run,
    resident memory and limits, for ``manage.py queues``."""
    query = sa.text(sql.queries()["live_workers"])
    return list(session.execute(query, {"stalled_after": stalled_after}).all())


def identity(queues: Sequence[str]) -> dict[str, object]:
    """What the worker row says of the process (besides its usage)."""
    return {"pid": os.getpid(), "hostname": socket.gethostname(), "queues": list(queues)}


def respawn(environ: Mapping[str, str]) -> None:
    """Replace this process with a fresh one: same interpreter, command line and ``environ``.
    Returns only when a stop signal arrived since the drain (:func:`note_stop_signals`): the
    caller then exits 0 instead.

    The pid stays, so the embedded PostgreSQL's list of users still holds it and the server keeps
    running; nothing at exit runs (no ``atexit``, no ``finally`` above the caller). File
    descriptors Python opened are not inherited (PEP 446), except stdin/stdout/stderr.
    """
    argv = [sys.executable, *sys.orig_argv[1:]]
    logger.warning(
        "replacing this worker process with a fresh one: %s",
        " ".join(argv),
        extra={"action": "worker_respawn"},
    )
    for handler in logging.getLogger().handlers:
        handler.flush()
    sys.stdout.flush()
    sys.stderr.flush()
    # a SIGTERM while the fresh process starts must stop it gracefully, not kill it: the
    # signals stay blocked (pending) across the exec until :func:`hold_stop_signals`
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    if _StopSignals.received:
        logger.info(
            "a stop signal arrived while recycling: stopping instead",
            extra={"action": "worker_respawn_cancelled"},
        )
        return
    try:
        os.execve(sys.executable, argv, dict(environ))
    except OSError as exc:  # the interpreter moved or vanished (an upgrade in place)
        logger.critical(
            "cannot replace this worker process (%s: %s): exiting 1 for a supervisor to restart it",
            type(exc).__name__, exc,
            extra={"action": "worker_respawn_failed"},
        )  # fmt: skip
        logging.shutdown()
        os._exit(1)


class _StopSignals:
    """SIGTERM/SIGINT that reached a recycled process before its loop handled them."""

    received = False

    @classmethod
    def note(cls, signum: int, frame: object) -> None:
        cls.received = True


def hold_stop_signals() -> None:
    """In a process started by :func:`respawn` (the stop signals are blocked): note them from now
    on, unblocked, until the worker's loop handles them (:func:`stop_signalled`). Elsewhere
    nothing changes (Ctrl-C during start-up still interrupts)."""
    if not STOP_SIGNALS & signal.pthread_sigmask(signal.SIG_BLOCK, ()):
        return
    note_stop_signals()
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)  # a pending one is noted now


def note_stop_signals() -> None:
    """From now on SIGTERM/SIGINT only note that they came (:func:`stop_signalled`): between the
    worker loop's handlers and the exec, or the fresh process's loop."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, _StopSignals.note)


def stop_signalled() -> bool:
    """Whether a stop signal arrived while :func:`hold_stop_signals` held them."""
    return _StopSignals.received
