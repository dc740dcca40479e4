"""Hands jobs to the task threads and brings their ends back to the event loop in batches.

The runner's event loop starts a job by submitting :func:`worker.jobs.execution.run_job` to the
process's executor. The thread that ran it appends what came of it to a queue of finished runs
and wakes the loop only if no wake-up is pending yet; the loop then takes every finished run at
once. Before that, the thread asks the runner for the next job its queue took ahead of its
slots (``take_next``) and, if there is one, runs it in the same slot: the loop is not needed
between two short jobs. Per job that saves an asyncio task, an asyncio future chained to the
executor's future, the executor's hand-over to an idle thread and a wake-up of the loop, which
has to win the GIL from the task threads before it can start anything (profiled with py-spy on
one-row jobs: the loop's share of the worker's Python CPU fell from ~19 % to ~10 %; no-op jobs:
the worker's CPU per job from ~140 to ~65 us).

A run that raises out of ``run_job`` (a fault of the worker, not of the task: ``run_job``
catches the task's exceptions) comes back with its exception; the runner logs it and the
recovery sweep runs the job again.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass

from worker.jobs import execution, state


@dataclass(frozen=True, slots=True)
class Finished:
    """A run the task thread is done with."""

    run: state.Run
    queue: str
    #: The end still to write (``None``: written already, or not to be).
    ending: state.Ending | None
    #: Seconds the run took in its thread.
    seconds: float
    #: What ``run_job`` raised, if it raised.
    error: BaseException | None
    #: The thread went on with another job of the queue in the same slot.
    continued: bool = False


class Dispatcher:
    """Runs jobs in an executor's threads; calls ``on_finished`` on the loop, in batches."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        executor: Executor,
        on_finished: Callable[[list[Finished]], None],
        take_next: Callable[[str], state.Run | None],
    ) -> None:
        self._loop = loop
        self._executor = executor
        self._on_finished = on_finished
        self._take_next = take_next
        self._finished: collections.deque[Finished] = collections.deque()
        self._wake_pending = False
        #: Runs submitted and not delivered back yet, by ``id()``.
        self._in_flight: dict[int, state.Run] = {}
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def in_flight(self) -> int:
        """Runs submitted and not delivered back to the loop yet."""
        return len(self._in_flight)

    def runs(self) -> list[state.Run]:
        """The runs submitted and not delivered back yet."""
        return list(self._in_flight.values())

    def submit(self, run: state.Run, queue: str) -> None:
        """Run ``run`` in a thread (call on the loop)."""
        self._in_flight[id(run)] = run
        self._idle.clear()
        try:
            self._executor.submit(self._run, run, queue)
        except BaseException:  # the executor is shut down: the run never started
            del self._in_flight[id(run)]
            if not self._in_flight:
                self._idle.set()
            raise

    async def wait_idle(self, timeout: float | None) -> bool:
        """Wait until every submitted run is delivered back (at most ``timeout`` seconds)."""
        if self._in_flight:
            try:
                await asyncio.wait_for(self._idle.wait(), timeout)
            except TimeoutError:
                return False
        return True

    def _run(self, run: state.Run, queue: str) -> None:
        # in a task thread, until the queue has no job taken ahead for this slot
        current: state.Run | None = run
        while current is not None:
            started = time.monotonic()
            error: BaseException | None = None
            ending = None
            try:
                ending = execution.run_job(current)
            except BaseException as exc:  # delivered to the loop, which logs it
                error = exc
            following = None if error is not None else self._take_next(queue)
            if following is not None:
                # in flight before this run is delivered: the dispatcher is never idle between
                self._in_flight[id(following)] = following
            seconds = time.monotonic() - started
            self._finished.append(
                Finished(current, queue, ending, seconds, error, continued=following is not None)
            )
            self._wake_loop()
            current = following

    def _wake_loop(self) -> None:
        if not self._wake_pending:
            self._wake_pending = True
            try:
                self._loop.call_soon_threadsafe(self._deliver)
            except RuntimeError:  # the loop is closed: nobody is left to tell
                self._wake_pending = False

    def _deliver(self) -> None:
        # on the loop: clear the flag before taking the batch, so that a run finishing while
        # the batch is taken either is in it or wakes the loop again
        self._wake_pending = False
        batch: list[Finished] = []
        while self._finished:
            batch.append(self._finished.popleft())
        for finished in batch:
            del self._in_flight[id(finished.run)]
        try:
            if batch:
                self._on_finished(batch)
        finally:
            if not self._in_flight:
                self._idle.set()
