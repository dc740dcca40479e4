"""Writing the ends of runs in batches: one statement for every run that ended meanwhile.

A run whose task used the database ends inside the task's own transaction
(``worker.jobs.execution``). Every other end (a no-op success, a failure, a retry, an interrupted
run) is handed to the :class:`Completer`, which writes what has gathered in one call of
``tl_end_runs`` (``worker.jobs.state.end_parameters``) a few milliseconds later, on a connection of
its own. Each end is a compare-and-set on its run, as a single write would be; a fenced run is
logged and writes nothing.

Until its end is written a job stays ``doing``: a crash in between re-runs it (its task wrote
nothing, or its failure is decided again). While the database is unreachable the batch is kept and
written again, with back-off, until it goes through.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Awaitable, Callable

import psycopg

from worker.jobs import execution, state

logger = logging.getLogger(__name__)

#: Seconds an end waits for others to join its batch.
FLUSH_DELAY = 0.002
#: Ends written in one statement at most.
MAX_BATCH = 500
#: Longest pause between two attempts to write while the database is unreachable.
MAX_PAUSE = 2.0


class Completer:
    """Gathers ends of runs and writes them in batches.

    Parameters
    ----------
    query:
        Runs a named query on the completer's own connection (``Link.query`` of the runner).
    failed, ok:
        Told when the database could not be reached, and when it could again.
    written:
        Told of each batch once written (to wake fetch loops a released lock or a due retry
        concerns).
    """

    def __init__(
        self,
        query: Callable[..., Awaitable[list[dict[str, object]]]],
        *,
        failed: Callable[[BaseException, str], None],
        ok: Callable[[], None],
        written: Callable[[list[state.Ending]], None] = lambda batch: None,
    ) -> None:
        self._query = query
        self._failed = failed
        self._ok = ok
        self._on_written = written
        self._pending: collections.deque[state.Ending] = collections.deque()
        self._arrived = asyncio.Event()
        self._written = asyncio.Event()
        self._writing = 0
        self._batch: list[state.Ending] = []

    @property
    def pending(self) -> int:
        """Ends not written yet."""
        return len(self._pending) + self._writing

    def job_ids(self) -> set[int]:
        """Jobs whose end is queued or being written."""
        return {ending.run.job_id for ending in (*self._pending, *self._batch)}

    def add(self, ending: state.Ending) -> None:
        """Queue ``ending`` for the next batch."""
        self._pending.append(ending)
        self._arrived.set()

    async def run(self) -> None:
        """Write batches until cancelled."""
        pause = 0.1
        while True:
            if not self._pending:
                self._arrived.clear()
                await self._arrived.wait()
            if len(self._pending) < MAX_BATCH:
                await asyncio.sleep(FLUSH_DELAY)
            if await self._write_batch():
                pause = 0.1
            else:
                await asyncio.sleep(pause)
                pause = min(MAX_PAUSE, pause * 2)

    async def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued end is written (at most ``timeout`` seconds)."""
        try:
            async with asyncio.timeout(timeout):
                while self.pending:
                    self._written.clear()
                    await self._written.wait()
        except TimeoutError:
            return False
        return True

    async def _write_batch(self) -> bool:
        batch = [self._pending.popleft() for _ in range(min(MAX_BATCH, len(self._pending)))]
        if not batch:
            return True
        self._writing = len(batch)
        self._batch = batch
        try:
            rows = await self._query("end_runs", **state.end_parameters(batch))
        except (psycopg.OperationalError, OSError) as exc:
            self._pending.extendleft(reversed(batch))
            self._failed(exc, "writing how jobs ended")
            return False
        except Exception:
            # not the database's absence: a bug or a refused statement; keep the ends (the jobs
            # stay doing, and are recovered if this process dies) and say so loudly
            self._pending.extendleft(reversed(batch))
            logger.exception(
                "could not write how %d job(s) ended; trying again",
                len(batch),
                extra={"action": "job_ends_not_written"},
            )
            return False
        finally:
            self._writing = 0
            self._batch = []
        self._ok()
        fenced = {row["job_id"] for row in rows if row["status"] == state.FENCED}
        for ending in batch:
            if ending.run.job_id in fenced:
                execution.log_fenced(ending.run)
        self._on_written(batch)
        self._written.set()
        return True


async def stop(task: asyncio.Task[None]) -> None:
    """Cancel the completer's loop."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
