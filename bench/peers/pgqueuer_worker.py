"""PgQueuer's ``run`` command on ``bench.peers.pgqueuer_app:create``, with its defaults.

    BENCH_PG_DSN=postgresql://... BENCH_CONCURRENCY=10 python -m bench.peers.pgqueuer_worker

What ``python -m pgqueuer run bench.peers.pgqueuer_app:create`` does (uvloop when installed, batch
size 10, dequeue timeout 30 s, no limit on concurrent tasks, SIGTERM stops it), called directly:
the command line of pgqueuer 1.6.0 fails here (typer 0.29) while setting up its logger
(``'str' object has no attribute 'name'``).
"""

from __future__ import annotations

from pgqueuer import run
from pgqueuer.adapters.cli.cli import asyncio_run
from pgqueuer.core import logconfig

from bench.peers.pgqueuer_app import create

if __name__ == "__main__":
    logconfig.setup_fancy_logger(logconfig.LogLevel.INFO)
    asyncio_run(run(create))
