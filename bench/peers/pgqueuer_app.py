"""PgQueuer with its defaults, for the throughput benchmark.

The worker is what PgQueuer's ``run`` command does with this factory (batch size 10, no limit on
concurrent tasks, uvloop when installed, asyncpg as driver): ``bench/peers/pgqueuer_worker.py``.

Two entrypoints: a no-op, and one that inserts one row into ``bench_rows``. PgQueuer has no
transaction of the job to write in: the row commits on a connection of its own (a pool of
``BENCH_CONCURRENCY`` connections), before the job's end is logged.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator

import asyncpg
from pgqueuer import AsyncpgDriver, Job, PgQueuer, Queries

NOOP = "bench.pgq_noop"
ONE_ROW = "bench.pgq_one_row"


@contextlib.asynccontextmanager
async def create() -> AsyncIterator[PgQueuer]:
    dsn = os.environ["BENCH_PG_DSN"]
    size = int(os.environ.get("BENCH_CONCURRENCY", "10"))
    connection = await asyncpg.connect(dsn)
    pool = await asyncpg.create_pool(dsn, min_size=size, max_size=size)
    try:
        pgq = PgQueuer(AsyncpgDriver(connection))

        @pgq.entrypoint(NOOP)
        async def noop(job: Job) -> None:
            return None

        @pgq.entrypoint(ONE_ROW)
        async def one_row(job: Job) -> None:
            async with pool.acquire() as conn:
                await conn.execute("INSERT INTO bench_rows (job_id) VALUES ($1)", job.id)

        yield pgq
    finally:
        await pool.close()
        await connection.close()


async def install(dsn: str) -> None:
    """Install PgQueuer's schema (its defaults) unless it is there already."""
    connection = await asyncpg.connect(dsn)
    try:
        queries = Queries(AsyncpgDriver(connection))
        if not await queries.schema_is_installed():
            await queries.install()
    finally:
        await connection.close()
