"""The periodic scheduler inside every worker process: APScheduler timers, one leader firing.

Every process runs an APScheduler ``AsyncIOScheduler`` holding the enabled entries of the
schedule table (``worker.maintenance.schedule``), paused. One process at a time leads
(``worker.maintenance.leader``: an advisory lock on a connection of its own); standbys try to
take the lead every ``election_interval`` seconds, so they take over within about that long when
the leader is SIGKILLed, loses the database or stops. The leader resumes the timers, confirms
its lock before each firing, and fires in a thread of its own on a small engine of its own
(never the jobs' pool): each firing records the tick and defers the job in one transaction
(``worker.maintenance.firing``), catching up the ticks missed meanwhile per the job's policy.
On becoming leader it fires every job once, which catches up what was missed while none led.

Stopping (before the worker drains its jobs) pauses the timers, waits for a firing under way
and closes the lock connection: a standby leads within ``election_interval`` seconds.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg
import sqlalchemy as sa
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import orm

from worker import db
from worker.maintenance import firing
from worker.maintenance.leader import Leadership
from worker.maintenance.schedule import PeriodicJob

logger = logging.getLogger(__name__)

#: Seconds between two attempts of a standby to lead (and of the leader to confirm its lock).
ELECTION_INTERVAL = 1.0
#: Seconds a stopping scheduler waits for a firing under way.
STOP_TIMEOUT = 10.0
#: Seconds between two log lines about the same database outage.
OUTAGE_LOG_INTERVAL = 10.0


@dataclass(frozen=True, kw_only=True)
class SchedulerOptions:
    """Timings of one process's scheduler."""

    election_interval: float = ELECTION_INTERVAL
    connect_timeout: int = 10


class Scheduler:
    """Fires the enabled ``jobs`` while this process leads."""

    def __init__(
        self,
        database_url: str,
        jobs: Sequence[PeriodicJob],
        options: SchedulerOptions | None = None,
        *,
        leadership: Leadership | None = None,
    ) -> None:
        self.options = options or SchedulerOptions()
        self.jobs = [job for job in jobs if job.enabled]
        self._database_url = database_url
        self._leadership = leadership or Leadership(db.libpq_url(database_url))
        self._timers = AsyncIOScheduler(
            timezone=UTC,
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="scheduler")
        self._engine: sa.Engine | None = None
        self._election: asyncio.Task[None] | None = None
        self._in_flight: asyncio.Future[firing.Firing] | None = None
        #: stop() was called: a firing cancelled from now on was left to finish by it.
        self._stopping = False
        self._outage_logged = float("-inf")
        #: Whether this process leads now.
        self.leading = False

    def start(self) -> None:
        """Start the timers (paused) and the election; call it in the worker's event loop."""
        self._engine = db.make_engine(
            self._database_url,
            connect_timeout=self.options.connect_timeout,
            pool_size=1,
            max_overflow=0,
            pool_pre_ping=True,
        )
        for job in self.jobs:
            self._timers.add_job(self._on_tick, job.trigger, args=[job], id=job.name, name=job.name)
        self._timers.start(paused=True)
        self._election = asyncio.create_task(self._elect(), name="scheduler-election")
        logger.info(
            "scheduler started with %d periodic job(s): %s",
            len(self.jobs), ", ".join(job.name for job in self.jobs) or "none",
            extra={"action": "scheduler_start"},
        )  # fmt: skip

    async def stop(self) -> None:
        """Stop firing and give the leadership up (a standby takes it over)."""
        self._stopping = True
        if self._timers.running:
            self._timers.pause()
        if self._election is not None:
            self._election.cancel()
            await asyncio.gather(self._election, return_exceptions=True)
        if self._in_flight is not None and not self._in_flight.done():
            done, _ = await asyncio.wait({self._in_flight}, timeout=STOP_TIMEOUT)
            if not done:
                logger.warning(
                    "a firing still runs after %.0f s: stopping without it (its transaction "
                    "commits or rolls back; its tick fires once either way)",
                    STOP_TIMEOUT,
                    extra={"action": "scheduler_stop_timeout"},
                )
        was_leading, self.leading = self.leading, False
        await self._leadership.release()
        if was_leading:
            logger.info("scheduler leadership released", extra={"action": "scheduler_release"})
        if self._timers.running:
            self._timers.shutdown(wait=False)
        if self._engine is not None:
            if self._in_flight is not None and not self._in_flight.done():
                # the firing left running still holds a connection: the executor's one thread
                # disposes of the engine after it (disposing now would leave it unclosed)
                self._executor.submit(self._engine.dispose)
            else:
                self._engine.dispose()
        self._executor.shutdown(wait=False)

    # -- election ------------------------------------------------------------------------------

    async def _elect(self) -> None:
        while True:
            try:
                await self._elect_once()
            except (psycopg.Error, OSError) as exc:
                self._demote(f"database unreachable ({type(exc).__name__})")
                self._log_outage(exc)
            except Exception:
                # a bug must not end the election for good: say so, and try again
                logger.exception("scheduler election failed", extra={"action": "scheduler_error"})
                self._demote("its election failed")
            await asyncio.sleep(self.options.election_interval)

    async def _elect_once(self) -> None:
        if self.leading:
            if not await self._leadership.confirm():
                self._demote("its lock connection broke")
            return
        if await self._leadership.acquire():
            await self._promote()

    async def _promote(self) -> None:
        self.leading = True
        logger.info(
            "became the scheduler leader: firing %s",
            ", ".join(job.name for job in self.jobs) or "nothing",
            extra={"action": "scheduler_leader"},
        )
        for job in self.jobs:  # catch up what was missed while no process led
            await self._fire(job)
        if self.leading:
            self._timers.resume()

    def _demote(self, why: str) -> None:
        if not self.leading:
            return
        self.leading = False
        self._timers.pause()
        logger.warning(
            "no longer the scheduler leader: %s; trying to lead again",
            why,
            extra={"action": "scheduler_demoted"},
        )

    def _log_outage(self, exc: BaseException) -> None:
        now = asyncio.get_running_loop().time()
        if now - self._outage_logged >= OUTAGE_LOG_INTERVAL:
            self._outage_logged = now
            logger.warning(
                "scheduler: database unreachable (%s: %s); retrying every %.1f s",
                type(exc).__name__,
                str(exc).strip().splitlines()[0] if str(exc).strip() else "",
                self.options.election_interval,
                extra={"action": "scheduler_database_unreachable"},
            )

    # -- firing --------------------------------------------------------------------------------

    async def _on_tick(self, job: PeriodicJob) -> None:
        if not self.leading:
            return
        if not await self._leadership.confirm():
            self._demote("its lock connection broke")
            return
        try:
            await self._fire(job)
        except asyncio.CancelledError:
            if self._stopping:
                # the timers' shutdown cancels the tick whose firing stop() left to finish, and
                # said so: nothing to add (APScheduler would log the cancellation as an error)
                return
            raise

    async def _fire(self, job: PeriodicJob) -> None:
        # one firing at a time (one thread); shielded, so that stop() can wait for it
        self._in_flight = asyncio.wrap_future(self._executor.submit(self._fire_in_thread, job))
        self._in_flight.add_done_callback(_retrieve)
        try:
            await asyncio.shield(self._in_flight)
        except (sa.exc.SQLAlchemyError, psycopg.Error, OSError) as exc:
            logger.warning(
                "periodic job %s: firing failed (%s: %s); its next firing catches up",
                job.name, type(exc).__name__, str(exc).strip().splitlines()[0],
                extra={"action": "scheduler_fire_failed", "periodic_job": job.name},
            )  # fmt: skip

    def _fire_in_thread(self, job: PeriodicJob) -> firing.Firing:
        assert self._engine is not None
        with orm.Session(self._engine) as session, session.begin():
            return firing.fire(session, job, now=datetime.now(UTC))


def _retrieve(future: asyncio.Future[firing.Firing]) -> None:
    """Mark a firing's exception as seen (the awaiting side logs it, or was cancelled)."""
    if not future.cancelled():
        future.exception()
