"""The worker's job loop: one fetch loop per queue in one process, riding out database outages.

Each queue has its own concurrency. A fetch loop takes as many ready jobs as its queue has free
slots, in one statement (``worker.jobs.state``, ``fetch_jobs``), and runs each in a thread of the
process's executor (:func:`worker.jobs.execution.run_job`, handed over and brought back by
``worker.jobs.dispatch``). It fetches again when a slot frees, when the listener hears of a new
job (LISTEN on procrastinate's queue channels), and at least every ``poll_interval`` seconds.
While a queue's jobs are short (a moving mean under ``PREFETCH_BELOW``) it takes up to
``PREFETCH_DEPTH`` times its concurrency ahead of its slots: a thread done with a job goes on
with the next one taken ahead, and the next fetch overlaps the running jobs instead of idling
every slot for a round trip. Jobs taken ahead and not started when the process stops are put
back as they were (not lost runs).

Beside the fetch loops run:

- the listener, on a connection of its own, re-opened whenever it breaks;
- the heartbeat of the process's worker row; a row removed meanwhile (the process was presumed
  dead) is registered again;
- the recovery sweep (``worker.recovery``), which takes running jobs away from dead workers.

Recycling (``worker.jobs.recycling``): the fetch loops take no more than ``WORKER_MAX_JOBS``
jobs; once that many have ended, or a job leaves the process over ``WORKER_MAX_MEMORY_MB``, the
runner stops as on SIGTERM; the heartbeat writes the job count and memory.

A job that was lost with a dead worker is *suspected* of killing it: it runs alone in its process
(no other job runs there meanwhile), so that a later loss can be blamed on it with certainty. An
idle process takes such jobs first; a busy one takes one after it waited ``suspect_wait`` seconds,
then lets its running jobs finish before starting it.

While the database is unreachable nothing exits and nothing spins: every loop logs the outage
once per ``OUTAGE_LOG_INTERVAL``, backs off, and resumes as soon as the server answers; running
jobs keep their state and record their end once it is back. After an outage, and after the
process starts, the recovery sweep waits ``stalled_after`` seconds of a reachable database before
it judges other workers dead (they could not beat either).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime
import json
import logging
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import psycopg
import psycopg.sql

from worker import db, recovery
from worker.jobs import execution, pinned, recycling, state
from worker.jobs.completer import Completer
from worker.jobs.dispatch import Dispatcher, Finished
from worker.jobs.links import KEEPALIVES, Link

logger = logging.getLogger(__name__)

#: Seconds between two fetches of a queue that heard nothing (the listener's fallback).
POLL_INTERVAL = 5.0
#: Polling interval while the listener is down.
DEAF_POLL_INTERVAL = 1.0
#: Longest pause between two attempts to reach the database.
MAX_OUTAGE_PAUSE = 2.0
#: Seconds a busy queue's fetch waits for more of its slots to free up.
FETCH_GATHER = 0.002
#: A queue whose jobs last less than this on average (seconds) takes jobs ahead of its slots.
PREFETCH_BELOW = 0.02
#: How many jobs ahead of its slots such a queue holds at most, in multiples of its concurrency
#: (with the half-look-ahead rule of ``_serve``, a fetch brings at least twice the concurrency,
#: for about the server's cost of a fetch of 7. Measured on one-row jobs, concurrency 10: a
#: fetch's answer takes 4-20 ms to reach a loop that shares the GIL with ten task threads; with
#: 2x ahead the slots had run dry by then after ~15 % of fetches, with 4x after under 1 %.
#: No-op jobs: a fetch brings 50, the server's CPU per job fell by a third.)
PREFETCH_DEPTH = 4
#: Heartbeats after which a job this worker holds but does not run is put back.
ORPHAN_AFTER_BEATS = 2
#: Seconds between two log lines about the same outage.
OUTAGE_LOG_INTERVAL = 10.0
#: Seconds after which the listener checks that its connection still answers.
LISTEN_CHECK_INTERVAL = 15.0


@dataclass(frozen=True, kw_only=True)
class RunnerOptions:
    """Queues and timings of one process's runner."""

    concurrency: Mapping[str, int]
    heartbeat_interval: float
    stalled_after: float
    recovery_interval: float
    #: Lost runs in which a job ran alone before it is failed as poison.
    max_lost_runs: int
    poll_interval: float = POLL_INTERVAL
    listen: bool = True
    recover: bool = True
    #: When the process replaces itself (off by default).
    recycle: recycling.RecyclePolicy = field(default_factory=recycling.RecyclePolicy)

    @property
    def suspect_wait(self) -> float:
        """Seconds a suspect waits for an idle process before a busy one takes it."""
        return self.stalled_after


class Runner:
    """Runs the jobs of its queues until stopped (or, with ``until_idle``, until none is left)."""

    def __init__(self, database_url: str, options: RunnerOptions, executor: ThreadPoolExecutor):
        self.options = options
        self.queues = list(options.concurrency)
        self.worker_id: int | None = None
        self._conninfo = db.libpq_url(database_url)
        self._executor = executor
        # connections of our own, one per user, re-opened on demand: no pool whose reconnection
        # backs off for longer than the outage
        self._links = {queue: Link(self._conninfo) for queue in self.queues}
        self._beat_link = Link(self._conninfo)
        self._misc_link = Link(self._conninfo)
        self._end_link = Link(self._conninfo)
        self._completer = Completer(
            self._end_link.query, failed=self._db_failed, ok=self._db_ok, written=self._ended
        )
        self._side: list[asyncio.Task[None]] = []
        self._stop = asyncio.Event()
        self._wake = {queue: asyncio.Event() for queue in self.queues}
        self._slot_freed = {queue: asyncio.Event() for queue in self.queues}
        self._busy = dict.fromkeys(self.queues, 0)
        #: The queue's last fetch filled every free slot (more jobs are likely waiting).
        self._busy_fetch = dict.fromkeys(self.queues, False)
        #: Runs that wait to run alone, or run alone (the others are the dispatcher's).
        self._tasks: dict[asyncio.Task[None], state.Run] = {}
        #: Created with the loop (``_open``): hands jobs to the threads, brings their ends back.
        self._dispatcher: Dispatcher | None = None
        #: Jobs taken ahead of free slots (see ``_prefetch_depth``), started as slots free.
        self._ready: dict[str, collections.deque[state.Run]] = {
            queue: collections.deque() for queue in self.queues
        }
        #: Moving mean of the queue's job durations (seconds); ``None`` before its first job.
        self._mean_duration: dict[str, float | None] = dict.fromkeys(self.queues)
        self._executing = 0
        self._job_ended = asyncio.Event()
        self._solo_lock = asyncio.Lock()
        self._solo_pending = 0
        self._claiming_suspect = False
        self._listening = False
        self._listener_failed = False
        self._outage_since: float | None = None
        self._outage_logged = 0.0
        # a process judges other workers dead only after it has itself been connected for
        # ``stalled_after`` seconds: one started just after an outage would take every live
        # worker (which could not beat meanwhile) for dead
        self._stable_since = time.monotonic()
        self._recovery_executor = ThreadPoolExecutor(1, thread_name_prefix="recovery")
        # recycling: counts jobs, watches memory, stops fetching once a limit is reached
        self.recycler = recycling.Recycler(options.recycle, on_due=self.stop)

    # -- life cycle ------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop fetching; running jobs go on (the caller waits for them with :meth:`drain`)."""
        self._stop.set()
        for event in (*self._wake.values(), *self._slot_freed.values()):
            event.set()

    @property
    def running(self) -> int:
        """Jobs taken and not ended yet."""
        return len(self._tasks) + (self._dispatcher.in_flight if self._dispatcher else 0)

    async def run(self) -> None:
        """Fetch and run jobs until :meth:`stop`; then return (running jobs may go on)."""
        await self._open()
        if self.options.listen:
            self._side.append(asyncio.create_task(self._listen(), name="listener"))
        if self.options.recover:
            self._side.append(asyncio.create_task(self._recover(), name="recovery"))
        loops = [asyncio.create_task(self._serve(q), name=f"fetch:{q}") for q in self.queues]
        try:
            await asyncio.gather(*loops)
        finally:
            for task in loops:
                task.cancel()

    async def drain(self, timeout: float | None) -> bool:
        """Wait for running jobs to end and their ends to be written (at most ``timeout``
        seconds); return whether they were."""
        deadline = None if timeout is None else time.monotonic() + timeout
        await self._release_ready()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)
        if self._tasks:
            return False
        if self._dispatcher is not None:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not await self._dispatcher.wait_idle(left):
                return False
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        return await self._completer.flush(left)

    async def close(self) -> None:
        """Stop the side loops, unregister the worker and close the connections."""
        for task in self._side:
            task.cancel()
        await asyncio.gather(*self._side, return_exceptions=True)
        if self.worker_id is not None and not self.running and not self._completer.pending:
            with contextlib.suppress(psycopg.Error, OSError):
                await self._misc_link.query("unregister_worker", worker_id=self.worker_id)
        for link in (*self._links.values(), self._beat_link, self._misc_link, self._end_link):
            await link.close()
        self._recovery_executor.shutdown(wait=False)

    async def run_until_idle(self) -> None:
        """Run every fetchable job (and those they defer), then return: for tests and scripts."""
        await self._open()
        try:
            while True:
                self._job_ended.clear()  # before looking: an end while we look is not missed
                await self._completer.flush()  # a retry's new schedule, a lock's release
                free = sum(self.options.concurrency.values()) - self._executing
                runs = await self._fetch(self.queues, free) if free > 0 else []
                if runs is None:
                    raise RuntimeError("the database is unreachable")
                for run in runs:
                    self._start(run, run.job.queue)
                if not runs and not self.running and not self._completer.pending:
                    return
                if self.running and (not runs or free <= len(runs)):
                    await self._job_ended.wait()
        finally:
            await self.drain(None)
            await self.close()

    async def _open(self) -> None:
        if self._side:
            return  # opened already
        self._dispatcher = Dispatcher(
            asyncio.get_running_loop(), self._executor, self._threads_finished, self._take_next
        )
        self._side = [
            asyncio.create_task(self._completer.run(), name="completer"),
            asyncio.create_task(self._heartbeats(), name="heartbeats"),
        ]
        pause = 0.5
        while self.worker_id is None:
            try:
                self.worker_id = await self._register()
            except (psycopg.Error, OSError) as exc:
                self._db_failed(exc, "registering the worker")
                await asyncio.sleep(pause)
                pause = min(MAX_OUTAGE_PAUSE, pause * 2)

    async def _register(self) -> int:
        rows = await self._beat_link.query("register_worker")
        worker_id = rows[0]["id"]
        assert isinstance(worker_id, int)
        await self._report_usage(worker_id)
        return worker_id

    async def _report_usage(self, worker_id: int) -> None:
        """Write the process's pid, queues, job count and memory on its worker row."""
        await self._beat_link.query(
            "report_worker_usage",
            worker_id=worker_id,
            **recycling.identity(self.queues),
            **self.recycler.usage(),
        )

    # -- fetching and running --------------------------------------------------------------

    async def _serve(self, queue: str) -> None:
        concurrency = self.options.concurrency[queue]
        while not self._stop.is_set():
            depth = self._prefetch_depth(queue, concurrency)
            free = concurrency + depth - self._busy[queue] - len(self._ready[queue])
            if (
                free <= 0
                or self._solo_pending
                or (depth and free < depth / 2 and self._ready[queue] and self._busy_fetch[queue])
            ):
                # full; or jobs taken ahead still wait for a slot and the queue has more: let
                # them run lower first, so that one fetch brings many (each fetch costs the
                # server about as much as the jobs it brings)
                self._slot_freed[queue].clear()
                await self._slot_freed[queue].wait()
                continue
            if not depth and free < concurrency / 2 and self._busy_fetch[queue]:
                # a busy queue: let more slots free up so that one fetch fills several
                await self._gather_slots(queue, concurrency)
                free = concurrency - self._busy[queue]
            free = self.recycler.reserve(free)  # never past WORKER_MAX_JOBS
            if free <= 0:
                self._slot_freed[queue].clear()
                await self._slot_freed[queue].wait()
                continue
            self._wake[queue].clear()
            runs = await self._fetch([queue], free)
            if self.recycler.settle(free, len(runs or ())):
                for event in self._slot_freed.values():
                    event.set()  # reserved slots given back: another queue may take them
            if runs is None:
                await self._pause_after_failure()
                continue
            self._ready[queue].extend(runs)
            self._start_ready(queue)
            self._busy_fetch[queue] = len(runs) == free
            if len(runs) < free:
                interval = self.options.poll_interval if self._listening else DEAF_POLL_INTERVAL
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake[queue].wait(), interval)

    def _prefetch_depth(self, queue: str, concurrency: int) -> int:
        """Jobs a queue takes ahead of its free slots: as many as its slots while its jobs are
        short (a fetch then overlaps the running jobs instead of idling every slot for a round
        trip), none while they are long (a job held ahead would wait for a slot that another
        process may have free)."""
        mean = self._mean_duration[queue]
        return PREFETCH_DEPTH * concurrency if mean is not None and mean < PREFETCH_BELOW else 0

    def _start_ready(self, queue: str) -> None:
        """Start the queue's jobs taken ahead, as far as its free slots go."""
        ready = self._ready[queue]
        concurrency = self.options.concurrency[queue]
        while ready and self._busy[queue] < concurrency and not self._solo_pending:
            self._start(ready.popleft(), queue)

    async def _release_ready(self) -> None:
        """Put back the jobs taken ahead and not started (the process is stopping)."""
        for ready in self._ready.values():
            while ready:
                await self._release(ready.popleft())

    async def _gather_slots(self, queue: str, concurrency: int) -> None:
        """Wait until half the queue's slots are free, at most ``FETCH_GATHER`` seconds: short
        jobs free theirs within microseconds, and a fixed pause would idle every slot."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + FETCH_GATHER
        freed = self._slot_freed[queue]
        while concurrency - self._busy[queue] < concurrency / 2 and not self._stop.is_set():
            left = deadline - loop.time()
            if left <= 0:
                return
            freed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(freed.wait(), left)

    async def _fetch(self, queues: list[str], limit: int) -> list[state.Run] | None:
        """Take up to ``limit`` jobs; ``None`` when the database could not be reached."""
        assert self.worker_id is not None
        idle = not self.running and not any(self._ready.values()) and not self._claiming_suspect
        if idle:
            self._claiming_suspect = True
        try:
            link = self._links[queues[0]] if len(queues) == 1 else self._misc_link
            rows = await link.query(
                "fetch_jobs",
                **state.fetch_parameters(
                    queues=queues, worker_id=self.worker_id, limit=limit, idle=idle,
                    suspect_wait=self.options.suspect_wait,
                ),
            )  # fmt: skip
        except (psycopg.Error, OSError) as exc:
            self._db_failed(exc, "fetching jobs")
            return None
        finally:
            if idle:
                self._claiming_suspect = False
        self._db_ok()
        now = time.monotonic()
        return [state.run_from_row(row, now) for row in rows]

    def _start(self, run: state.Run, queue: str) -> None:
        self._busy[queue] = self._busy.get(queue, 0) + 1
        if run.alone:
            self._solo_pending += 1
            task = asyncio.create_task(self._run_alone(run, queue), name=f"job {run.job_id}")
            self._tasks[task] = run
            return
        assert self._dispatcher is not None, "the runner is not open"
        self._executing += 1
        try:
            self._dispatcher.submit(run, queue)
        except BaseException:
            self._executing -= 1
            self._busy[queue] -= 1
            raise

    def _take_next(self, queue: str) -> state.Run | None:
        """The next job the queue took ahead, for the slot a task thread just finished with
        (called in that thread): none once the runner stops, while a job waits to run alone,
        or if the next one must run alone (the loop starts those)."""
        if self._stop.is_set() or self._solo_pending:
            return None
        ready = self._ready[queue]
        try:
            run = ready.popleft()  # atomic: the loop may pop from the same deque
        except IndexError:
            return None
        if run.alone:
            ready.appendleft(run)
            return None
        return run

    def _threads_finished(self, batch: list[Finished]) -> None:
        """Runs came back from their threads (on the loop, in the dispatcher's batches)."""
        for finished in batch:
            self._ran(finished)
            self.recycler.job_ended()  # WORKER_MAX_JOBS reached, or over WORKER_MAX_MEMORY_MB
            if not finished.continued:  # its slot is free (else its thread runs the next job)
                self._executing -= 1
                self._busy[finished.queue] -= 1
        self._after_jobs_done(alone=False, queues={finished.queue for finished in batch})

    async def _run_alone(self, run: state.Run, queue: str) -> None:
        try:
            async with self._solo_lock:
                await self._wait_alone(run)
                if self._stop.is_set():
                    await self._release(run)
                    return
                self._ran(await self._run_in_thread(run, queue))
        except Exception as exc:
            self._ran(Finished(run, queue, None, 0.0, exc))
        finally:
            self._solo_pending -= 1
            self._tasks.pop(asyncio.current_task(), None)  # type: ignore[arg-type]
            self.recycler.job_ended()
            self._busy[queue] -= 1
            self._after_jobs_done(alone=True, queues={queue})

    async def _run_in_thread(self, run: state.Run, queue: str) -> Finished:
        self._executing += 1
        started = time.monotonic()
        try:
            loop = asyncio.get_running_loop()
            ending = await loop.run_in_executor(self._executor, execution.run_job, run)
        except Exception as exc:
            return Finished(run, queue, None, time.monotonic() - started, exc)
        finally:
            self._executing -= 1
        return Finished(run, queue, ending, time.monotonic() - started, None)

    def _ran(self, finished: Finished) -> None:
        """Take in what came of a run: its end to write, its duration, or the worker's fault."""
        run = finished.run
        if finished.error is not None:
            logger.error(
                "job %s: the worker failed to run it; the recovery sweep will run it again",
                run.job_id,
                exc_info=finished.error,
                extra={"action": "job_run_failed", "job_id": run.job_id},
            )
            return
        self._note_duration(run.job.queue, finished.seconds)
        if finished.ending is not None:
            self._completer.add(finished.ending)
        elif run.job.lock is not None:
            self._wake_all()  # its lock is free: a job waiting for it may start now

    def _after_jobs_done(self, *, alone: bool, queues: set[str]) -> None:
        """Slots freed: start jobs taken ahead, wake whoever waits for a slot or an end."""
        if not self._stop.is_set():
            for name in self.queues if alone else queues:
                self._start_ready(name)
        self._job_ended.set()
        for event in self._slot_freed.values():
            event.set()

    def _note_duration(self, queue: str, seconds: float) -> None:
        if queue in self._mean_duration:
            mean = self._mean_duration[queue]
            self._mean_duration[queue] = seconds if mean is None else mean * 0.9 + seconds * 0.1

    def _ended(self, batch: list[state.Ending]) -> None:
        """Ends were written: wake the fetch loops if a lock was released or a retry is due."""
        soon = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=1)
        for ending in batch:
            if ending.run.job.lock is not None:
                self._wake_all()
                return
            if ending.retry_at is not None and ending.retry_at <= soon:
                event = self._wake.get(ending.run.job.queue)
                if event is not None:
                    event.set()

    def _wake_all(self) -> None:
        for event in self._wake.values():
            event.set()

    async def _wait_alone(self, run: state.Run) -> None:
        if self._executing:
            logger.info(
                "job %s was lost with a dead worker before: it runs alone once the %d running "
                "job(s) of this process end",
                run.job_id, self._executing,
                extra={"action": "job_waits_to_run_alone", "job_id": run.job_id},
            )  # fmt: skip
        while self._executing and not self._stop.is_set():
            self._job_ended.clear()
            stop = asyncio.create_task(self._stop.wait())
            ended = asyncio.create_task(self._job_ended.wait())
            await asyncio.wait([stop, ended], return_when=asyncio.FIRST_COMPLETED)
            stop.cancel()
            ended.cancel()

    async def _release(self, run: state.Run) -> None:
        with contextlib.suppress(psycopg.Error, OSError):
            await self._misc_link.query("release_run", job_id=run.job_id, run=run.run)

    # -- side loops --------------------------------------------------------------------------

    async def _listen(self) -> None:
        pause = 0.5
        while True:
            try:
                await self._listen_once()
            except (psycopg.OperationalError, OSError) as exc:
                self._db_failed(exc, "listening for new jobs")
            except Exception:
                logger.exception("listener failed", extra={"action": "listener_failed"})
            self._listening = False
            self._listener_failed = True
            await asyncio.sleep(pause)
            pause = min(MAX_OUTAGE_PAUSE, pause * 2)

    async def _listen_once(self) -> None:
        async with await psycopg.AsyncConnection.connect(
            self._conninfo,
            autocommit=True,
            **KEEPALIVES,  # type: ignore[arg-type]
        ) as connection:
            for queue in self.queues:
                listen = psycopg.sql.SQL("LISTEN {}").format(
                    psycopg.sql.Identifier(pinned.channel(queue))
                )
                await connection.execute(listen)
            self._listening = True
            if self._listener_failed:
                self._listener_failed = False
                logger.warning(
                    "listening for new jobs again", extra={"action": "listener_reconnected"}
                )
            for event in self._wake.values():
                event.set()  # jobs may have arrived while nobody listened
            while True:
                async for notify in connection.notifies(timeout=LISTEN_CHECK_INTERVAL):
                    self._on_notify(notify.channel, notify.payload)
                await connection.execute("SELECT 1")

    def _on_notify(self, channel: str, payload: str) -> None:
        queue = channel.partition("#")[2]
        try:
            kind = json.loads(payload).get("type")
        except ValueError:
            return
        if kind == pinned.JOB_INSERTED and queue in self._wake:
            self._wake[queue].set()

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self.options.heartbeat_interval)
            if self.worker_id is None:
                continue  # not registered yet (the database is not answering): nothing to beat
            try:
                await self._beat()
            except (psycopg.OperationalError, OSError) as exc:
                self._db_failed(exc, "beating")
            except Exception:
                # never let the heartbeat die: a silent worker's jobs would be taken away
                logger.exception("heartbeat failed", extra={"action": "heartbeat_failed"})

    async def _beat(self) -> None:
        assert self.worker_id is not None
        rows = await self._beat_link.query("beat", worker_id=self.worker_id)
        if not rows:
            old, self.worker_id = self.worker_id, await self._register()
            logger.warning(
                "worker %s was presumed dead and removed; registered again as worker %s (runs "
                "taken away meanwhile record nothing)",
                old, self.worker_id,
                extra={"action": "worker_registered_again", "worker_id": self.worker_id},
            )  # fmt: skip
        else:
            self.recycler.check()  # a long job may grow past the memory limit
            await self._report_usage(self.worker_id)
        self._db_ok()
        await self._release_orphans()

    async def _release_orphans(self) -> None:
        """Put back jobs this worker holds in the database but does not run: a fetch whose
        commit went through while its answer was lost (a connection cut at that instant)."""
        assert self.worker_id is not None
        known = {run.job_id for run in self._tasks.values()} | self._completer.job_ids()
        if self._dispatcher is not None:
            known.update(run.job_id for run in self._dispatcher.runs())
        known.update(run.job_id for ready in self._ready.values() for run in ready)
        held = await self._beat_link.query(
            "held_jobs",
            worker_id=self.worker_id,
            older_than=ORPHAN_AFTER_BEATS * self.options.heartbeat_interval,
        )
        for row in held:
            if row["id"] in known:
                continue
            await self._beat_link.query("release_run", job_id=row["id"], run=row["runs"])
            logger.warning(
                "job %s was taken by this worker but never reached it (its fetch's answer was "
                "lost): put back in the queue",
                row["id"],
                extra={"action": "orphan_released", "job_id": row["id"]},
            )

    async def _recover(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.options.recovery_interval)
            if time.monotonic() - self._stable_since < self.options.stalled_after:
                continue  # after an outage, other workers need time to beat again
            try:
                await loop.run_in_executor(
                    self._recovery_executor,
                    recovery.sweep_once,
                    self.options.stalled_after,
                    self.options.max_lost_runs,
                )
            except Exception as exc:
                self._db_failed(exc, "sweeping for stalled jobs")

    # -- database access and outages ---------------------------------------------------------

    async def _pause_after_failure(self) -> None:
        pause = min(MAX_OUTAGE_PAUSE, 0.25 * 2 ** min(4, self._outage_seconds()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), max(0.25, pause))

    def _outage_seconds(self) -> float:
        return 0.0 if self._outage_since is None else time.monotonic() - self._outage_since

    def _db_failed(self, exc: BaseException, doing: str) -> None:
        now = time.monotonic()
        if self._outage_since is None:
            self._outage_since = now
        if now - self._outage_logged >= OUTAGE_LOG_INTERVAL:
            self._outage_logged = now
            logger.warning(
                "database unreachable while %s (%s: %s) for %.0f s; retrying, running jobs "
                "keep their state",
                doing, type(exc).__name__, str(exc).strip().splitlines()[0] if str(exc) else "",
                now - self._outage_since,
                extra={"action": "database_unreachable", "worker_id": self.worker_id},
            )  # fmt: skip

    def _db_ok(self) -> None:
        if self._outage_since is None:
            return
        now = time.monotonic()
        logger.warning(
            "database reachable again after %.1f s: fetching resumed",
            now - self._outage_since,
            extra={"action": "database_reachable", "worker_id": self.worker_id},
        )
        self._outage_since = None
        self._outage_logged = 0.0
        self._stable_since = now
