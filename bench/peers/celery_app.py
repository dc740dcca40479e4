"""Celery + Redis for the throughput benchmark: broker on db 0, results on db 1.

    BENCH_REDIS_URL=redis://127.0.0.1:PORT python -m celery -A bench.peers.celery_app worker \
        -P threads -c 10

Results are stored (Celery's default with a result backend), so that the benchmark counts
finished jobs with ``DBSIZE`` on db 1. Nothing here is durable the way a Postgres queue is.
"""

from __future__ import annotations

import os
import time

from celery import Celery

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379")
BROKER_DB = 0
RESULT_DB = 1

app = Celery("bench", broker=f"{REDIS_URL}/{BROKER_DB}", backend=f"{REDIS_URL}/{RESULT_DB}")
app.conf.update(broker_connection_retry_on_startup=True, worker_hijack_root_logger=True)


@app.task(name="bench.celery_noop")
def noop() -> None:
    return None


@app.task(name="bench.celery_stamp")
def stamp() -> float:
    """Returns when it started (wall clock, same machine as the caller): defer -> start latency."""
    return time.time()
