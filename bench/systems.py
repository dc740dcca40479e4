"""The queues under test, behind one interface, so that every one is measured the same way.

A system knows how to empty its tables (``reset``), prefill jobs of a kind (``prefill``), start its
worker (``command``), count its finished jobs from its own tables or result store (``finished``),
check that they all succeeded (``verify``), measure one defer -> start latency with its worker idle
(``latency``), and enqueue one job or a batch (``enqueue_one``, ``enqueue_batch``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from collections.abc import Iterator
from typing import Any, ClassVar

import psycopg

from bench import noop_tasks
from worker import db, queues, runtime

NOOP = "noop"
ONE_ROW = "one_row"
#: Jobs per statement when prefilling.
CHUNK = 1000
#: Seconds a single job may take to be done, while measuring latency.
SAMPLE_TIMEOUT = 30
#: Seconds between two polls of a single job, while measuring latency.
SAMPLE_POLL = 0.002


class Database:
    """One autocommit connection of the benchmark, to read and clean up a system's tables."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.connection = psycopg.connect(url, autocommit=True)

    def scalar(self, sql: str, params: Any = None) -> Any:
        row = self.connection.execute(sql, params).fetchone()
        return None if row is None else row[0]

    def execute(self, sql: str, params: Any = None) -> None:
        self.connection.execute(sql, params)

    def exists(self, table: str) -> bool:
        return bool(self.scalar("SELECT to_regclass(%s) IS NOT NULL", (table,)))

    def vacuum(self, *tables: str, analyze_only: bool = False) -> None:
        for table in tables:
            if self.exists(table):
                self.execute(f"{'ANALYZE' if analyze_only else 'VACUUM ANALYZE'} {table}")

    def close(self) -> None:
        self.connection.close()


def chunks(n: int, size: int = CHUNK) -> Iterator[int]:
    while n > 0:
        yield min(n, size)
        n -= size


class System:
    """A queue under test; see the module's docstring."""

    #: Row of the results table.
    label: ClassVar[str]
    #: Kinds of job this system runs.
    kinds: ClassVar[tuple[str, ...]] = (NOOP,)

    def reset(self) -> None:
        raise NotImplementedError

    def prefill(self, kind: str, n: int) -> None:
        raise NotImplementedError

    def analyze(self) -> None:
        """Fresh planner statistics once prefilled: what autovacuum would have seen of a backlog.

        Statistics taken of the emptied tables make PostgreSQL plan every fetch as a scan and sort
        of the whole backlog (procrastinate's one-job fetch then takes milliseconds).
        """

    def command(self, concurrency: int) -> tuple[list[str], dict[str, str]]:
        raise NotImplementedError

    def finished(self, n: int) -> int:
        raise NotImplementedError

    def verify(self, kind: str, n: int) -> None:
        pass

    def describe_unfinished(self) -> str:
        """What the jobs not finished look like, for a run that stalls."""
        return ""

    def latency(self) -> float:
        raise NotImplementedError

    def enqueue_one(self) -> None:
        raise NotImplementedError

    def enqueue_batch(self, size: int) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


class ProcrastinateTables(System):
    """Shared by our worker and the bare procrastinate: both use procrastinate's tables.

    Only jobs above the highest id found at start are the benchmark's (a ``DATABASE_URL`` may hold
    others, and the 1 M-row database holds its million): ``reset`` deletes those alone. Only jobs of
    the system's queue are counted.
    """

    queue: ClassVar[str]

    def __init__(self, url: str) -> None:
        self.db = Database(url)
        self.baseline = int(self.db.scalar("SELECT coalesce(max(id), 0) FROM procrastinate_jobs"))

    def reset(self) -> None:
        self.db.execute("DELETE FROM procrastinate_jobs WHERE id > %s", (self.baseline,))
        for table in ("task_results", "bench_rows"):
            if self.db.exists(table):
                self.db.execute(f"TRUNCATE {table}")
        self.db.vacuum("procrastinate_jobs", "procrastinate_events", "task_results", "bench_rows")

    def analyze(self) -> None:
        self.db.vacuum("procrastinate_jobs", "procrastinate_events", analyze_only=True)

    def finished(self, n: int) -> int:
        pending = self.db.scalar(
            "SELECT count(*) FROM procrastinate_jobs "
            "WHERE id > %s AND queue_name = %s AND status IN ('todo', 'doing')",
            (self.baseline, self.queue),
        )
        return n - int(pending)

    def describe_unfinished(self) -> str:
        rows = self.db.connection.execute(
            "SELECT to_jsonb(j) - 'args' FROM procrastinate_jobs AS j "
            "WHERE id > %s AND queue_name = %s AND status IN ('todo', 'doing') ORDER BY id LIMIT 5",
            (self.baseline, self.queue),
        ).fetchall()
        return "unfinished jobs: " + "; ".join(str(row[0]) for row in rows)

    def verify(self, kind: str, n: int) -> None:
        succeeded = self.db.scalar(
            "SELECT count(*) FROM procrastinate_jobs "
            "WHERE id > %s AND queue_name = %s AND status = 'succeeded'",
            (self.baseline, self.queue),
        )
        if succeeded != n:
            raise SystemExit(f"{self.label}: {succeeded} of {n} jobs succeeded")
        if kind == ONE_ROW and (rows := self.db.scalar("SELECT count(*) FROM bench_rows")) != n:
            raise SystemExit(f"{self.label}: {rows} rows written by {n} one-row jobs")

    def wait_done(self, job_id: int) -> None:
        deadline = time.monotonic() + SAMPLE_TIMEOUT
        query = "SELECT status FROM procrastinate_jobs WHERE id = %s"
        while (status := self.db.scalar(query, (job_id,))) != "succeeded":
            if time.monotonic() > deadline:
                raise SystemExit(f"{self.label}: job {job_id} is still {status}")
            time.sleep(SAMPLE_POLL)

    def started_after(self, job_id: int) -> float:
        """Seconds from the job's ``deferred`` event to its ``started`` event (server clock)."""
        return float(
            self.db.scalar(
                "SELECT extract(epoch FROM min(at) FILTER (WHERE type = 'started') "
                "- min(at) FILTER (WHERE type = 'deferred')) "
                "FROM procrastinate_events WHERE job_id = %s",
                (job_id,),
            )
        )

    def close(self) -> None:
        self.db.close()


_bound_url: str | None = None


def bind_runtime(url: str) -> None:
    """Point the task layer of this process (``.delay()``, ``group``) at ``url``."""
    global _bound_url
    if _bound_url != url:
        runtime.setup(url)
        _bound_url = url


def unbind_runtime() -> None:
    global _bound_url
    if _bound_url is not None:
        runtime.teardown()
        _bound_url = None


class Ours(ProcrastinateTables):
    """``manage.py worker`` on the ``default`` queue, with ``bench.noop`` and ``bench.one_row``.

    Its scheduler is off (``WORKER_SCHEDULER=false``): the periodic jobs it defers at start would
    run among the measured ones, and its retention would prune the 1 M finished jobs of ``--big``.
    """

    label = "`manage.py worker`"
    kinds = (NOOP, ONE_ROW)
    queue = queues.DEFAULT

    def __init__(self, url: str, label: str | None = None) -> None:
        super().__init__(url)
        if label:
            self.label = label  # type: ignore[misc]

    def prefill(self, kind: str, n: int) -> None:
        from worker.jobs import group

        bind_runtime(self.db.url)
        task = noop_tasks.noop if kind == NOOP else noop_tasks.one_row
        for size in chunks(n):
            group(task.s() for _ in range(size)).apply_async()

    def command(self, concurrency: int) -> tuple[list[str], dict[str, str]]:
        return (
            [sys.executable, "manage.py", "worker", "--queues", queues.DEFAULT,
             "--concurrency", f"{queues.DEFAULT}={concurrency}"],
            {"DATABASE_URL": self.db.url, "WORKER_IMPORT_PATHS": "bench.noop_tasks",
             "WORKER_SCHEDULER": "false"},
        )  # fmt: skip

    def latency(self) -> float:
        bind_runtime(self.db.url)
        with db.session_scope():
            job_id = noop_tasks.noop.delay().id
        self.wait_done(job_id)
        return self.started_after(job_id)

    def enqueue_one(self) -> None:
        bind_runtime(self.db.url)
        noop_tasks.noop.delay()

    def enqueue_batch(self, size: int) -> None:
        from worker.jobs import group

        bind_runtime(self.db.url)
        group(noop_tasks.noop.s() for _ in range(size)).apply_async()


class OursInTransaction(Ours):
    """Enqueue only: ``.delay()`` and ``group`` inside the caller's ``session_scope`` (a
    transaction begun and committed around each call, as app code deferring with its writes)."""

    def enqueue_one(self) -> None:
        bind_runtime(self.db.url)
        with db.session_scope():
            noop_tasks.noop.delay()

    def enqueue_batch(self, size: int) -> None:
        bind_runtime(self.db.url)
        with db.session_scope():
            super().enqueue_batch(size)


class BareProcrastinate(ProcrastinateTables):
    """procrastinate 3.10 itself: its App, its worker, a sync no-op task, its sync ``defer``."""

    label = "bare procrastinate 3.10, sync task"
    queue = noop_tasks.BARE_QUEUE

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.app = noop_tasks.bare_app(url)
        self.app.open()
        self.task = self.app.tasks["bench.bare_noop"]

    def prefill(self, kind: str, n: int) -> None:
        for size in chunks(n):
            self.task.batch_defer(*[{}] * size)

    def command(self, concurrency: int) -> tuple[list[str], dict[str, str]]:
        return (
            [sys.executable, "-m", "bench.bare_worker", self.db.url, str(concurrency)],
            {},
        )

    def latency(self) -> float:
        job_id = self.task.defer()
        self.wait_done(job_id)
        return self.started_after(job_id)

    def enqueue_one(self) -> None:
        self.task.defer()

    def enqueue_batch(self, size: int) -> None:
        self.task.batch_defer(*[{}] * size)

    def close(self) -> None:
        self.app.close()
        super().close()


class PgQueuer(System):
    """PgQueuer with its defaults (``python -m pgqueuer run``, batch 10, asyncpg)."""

    kinds = (NOOP, ONE_ROW)

    def __init__(self, url: str) -> None:
        import asyncpg
        import pgqueuer
        from pgqueuer import AsyncpgDriver, Queries

        from bench.peers import pgqueuer_app

        self.label = f"PgQueuer {pgqueuer.__version__}, its defaults (batch 10)"  # type: ignore[misc]
        self.url = url
        self.entrypoints = {NOOP: pgqueuer_app.NOOP, ONE_ROW: pgqueuer_app.ONE_ROW}
        self.db = Database(url)
        self.loop = asyncio.Runner()
        self.loop.run(pgqueuer_app.install(url))
        self.connection = self.loop.run(asyncpg.connect(url))
        self.queries = Queries(AsyncpgDriver(self.connection))

    def reset(self) -> None:
        self.db.execute("TRUNCATE pgqueuer, pgqueuer_log, pgqueuer_statistics, bench_rows")
        self.db.vacuum("pgqueuer", "pgqueuer_log", "pgqueuer_statistics", "bench_rows")

    def prefill(self, kind: str, n: int) -> None:
        entrypoint = self.entrypoints[kind]
        for size in chunks(n):
            self.loop.run(self.queries.enqueue([entrypoint] * size, [None] * size, [0] * size))

    def analyze(self) -> None:
        self.db.vacuum("pgqueuer", "pgqueuer_log", analyze_only=True)

    def command(self, concurrency: int) -> tuple[list[str], dict[str, str]]:
        return (
            [sys.executable, "-m", "bench.peers.pgqueuer_worker"],
            {"BENCH_PG_DSN": self.url, "BENCH_CONCURRENCY": str(concurrency)},
        )

    def finished(self, n: int) -> int:
        return n - int(self.db.scalar("SELECT count(*) FROM pgqueuer"))

    def verify(self, kind: str, n: int) -> None:
        succeeded = self.db.scalar("SELECT count(*) FROM pgqueuer_log WHERE status = 'successful'")
        if succeeded != n:
            raise SystemExit(f"{self.label}: {succeeded} of {n} jobs succeeded")
        if kind == ONE_ROW and (rows := self.db.scalar("SELECT count(*) FROM bench_rows")) != n:
            raise SystemExit(f"{self.label}: {rows} rows written by {n} one-row jobs")

    def latency(self) -> float:
        (job_id,) = self.loop.run(self.queries.enqueue(self.entrypoints[NOOP], None))
        deadline = time.monotonic() + SAMPLE_TIMEOUT
        while self.db.scalar("SELECT count(*) FROM pgqueuer WHERE id = %s", (job_id,)):
            if time.monotonic() > deadline:
                raise SystemExit(f"{self.label}: job {job_id} not done")
            time.sleep(SAMPLE_POLL)
        return float(
            self.db.scalar(
                "SELECT extract(epoch FROM min(created) FILTER (WHERE status = 'picked') "
                "- min(created) FILTER (WHERE status = 'queued')) "
                "FROM pgqueuer_log WHERE job_id = %s",
                (job_id,),
            )
        )

    def enqueue_one(self) -> None:
        self.loop.run(self.queries.enqueue(self.entrypoints[NOOP], None))

    def enqueue_batch(self, size: int) -> None:
        entrypoint = self.entrypoints[NOOP]
        self.loop.run(self.queries.enqueue([entrypoint] * size, [None] * size, [0] * size))

    def close(self) -> None:
        self.loop.run(self.connection.close())
        self.loop.close()
        self.db.close()


class CeleryRedis(System):
    """Celery with Redis as broker and result store, threads pool: not durable."""

    def __init__(self, redis_url: str) -> None:
        import celery
        import redis

        os.environ["BENCH_REDIS_URL"] = redis_url
        from bench.peers import celery_app

        self.label = f"Celery {celery.__version__} + Redis, threads pool (not durable)"  # type: ignore[misc]
        self.redis_url = redis_url
        self.app = celery_app
        self.results = redis.Redis.from_url(f"{redis_url}/{celery_app.RESULT_DB}")

    def reset(self) -> None:
        self.results.flushall()

    @contextlib.contextmanager
    def _not_awaiting_results(self) -> Iterator[None]:
        """Prefill without subscribing to each job's result (untimed: only saves time)."""
        backend = self.app.app.backend
        backend.on_task_call = lambda producer, task_id: None
        try:
            yield
        finally:
            del backend.on_task_call

    def prefill(self, kind: str, n: int) -> None:
        with self._not_awaiting_results(), self.app.app.producer_or_acquire() as producer:
            for _ in range(n):
                self.app.noop.apply_async(producer=producer)

    def command(self, concurrency: int) -> tuple[list[str], dict[str, str]]:
        return (
            [sys.executable, "-m", "celery", "-A", "bench.peers.celery_app", "worker",
             "-P", "threads", "-c", str(concurrency)],
            {"BENCH_REDIS_URL": self.redis_url},
        )  # fmt: skip

    def finished(self, n: int) -> int:
        return int(self.results.dbsize())

    def verify(self, kind: str, n: int) -> None:
        if (stored := self.results.dbsize()) != n:
            raise SystemExit(f"{self.label}: {stored} results for {n} jobs")

    def latency(self) -> float:
        sent = time.time()
        started = float(self.app.stamp.delay().get(timeout=SAMPLE_TIMEOUT))
        return started - sent

    def enqueue_one(self) -> None:
        self.app.noop.delay()

    def enqueue_batch(self, size: int) -> None:
        import celery

        celery.group(self.app.noop.s() for _ in range(size)).apply_async()

    def close(self) -> None:
        self.results.close()
