"""Throughput and latency of ``manage.py worker`` against a bare procrastinate worker.

    python bench/throughput.py [--jobs 2000] [--concurrency 4] [--rounds 3] [--samples 50]

Both workers run as one process each, on the same database, with the same concurrency, and drain
the same number of no-op jobs deferred in one batch while they are running. Rounds alternate
between the two so that the machine's noise hits both. Throughput is jobs / (last finish - first
start), from procrastinate's own event timestamps; latency is deferred -> started of single jobs
deferred one at a time to an idle worker. Before each run, finished jobs and outcomes are deleted
and the tables vacuumed, so that every run starts from the same state. The ratio full / bare is
what matters here: this machine is shared and absolute numbers move.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.noop_tasks import bare_app, noop  # noqa: E402
from worker import db, queues, runtime, schema  # noqa: E402
from worker.embedded import EmbeddedPostgres  # noqa: E402
from worker.jobs import deferring  # noqa: E402


@contextmanager
def database() -> Iterator[str]:
    if os.environ.get("DATABASE_URL"):
        yield db.libpq_url(os.environ["DATABASE_URL"])
        return
    with tempfile.TemporaryDirectory(prefix="bench-") as root:
        with EmbeddedPostgres(Path(root)).attached() as url:
            yield url


class Peer:
    """One worker under test: how to start it and how to defer its no-op jobs."""

    def __init__(self, name: str, command: list[str], ready: str, env: dict[str, str]) -> None:
        self.name = name
        self.command = command
        self.ready = ready
        self.env = env
        self.defer: Callable[[int], list[int]] = lambda n: []

    @contextmanager
    def running(self) -> Iterator[None]:
        with tempfile.NamedTemporaryFile("w+", suffix=".log") as log:
            process = subprocess.Popen(
                self.command, cwd=REPO, env={**os.environ, **self.env},
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )  # fmt: skip
            try:
                deadline = time.monotonic() + 60
                while self.ready not in Path(log.name).read_text():
                    if process.poll() is not None or time.monotonic() > deadline:
                        raise SystemExit(
                            f"{self.name} did not start:\n{Path(log.name).read_text()}"
                        )
                    time.sleep(0.05)
                yield
            finally:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=60)


def reset(engine: sa.Engine) -> None:
    """Same starting point for every run: no finished jobs, no outcomes, fresh statistics."""
    with engine.begin() as connection:
        connection.execute(sa.text("DELETE FROM procrastinate_jobs WHERE status = 'succeeded'"))
        connection.execute(sa.text("TRUNCATE task_results"))
    with engine.connect() as connection:
        autocommit = connection.execution_options(isolation_level="AUTOCOMMIT")
        for table in ("procrastinate_jobs", "procrastinate_events", "task_results"):
            autocommit.execute(sa.text(f"VACUUM ANALYZE {table}"))


def wait_done(engine: sa.Engine, ids: list[int], timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    query = sa.text(
        "SELECT count(*) FROM procrastinate_jobs WHERE id = ANY(:ids) AND status = 'succeeded'"
    )
    while True:
        with engine.connect() as connection:
            if connection.execute(query, {"ids": ids}).scalar_one() == len(ids):
                return
        if time.monotonic() > deadline:
            raise SystemExit("jobs did not finish in time")
        time.sleep(0.1)


def span(engine: sa.Engine, ids: list[int]) -> float:
    query = sa.text(
        "SELECT extract(epoch FROM max(at) FILTER (WHERE type = 'succeeded') "
        "- min(at) FILTER (WHERE type = 'started')) FROM procrastinate_events "
        "WHERE job_id = ANY(:ids)"
    )
    with engine.connect() as connection:
        return float(connection.execute(query, {"ids": ids}).scalar_one())


def latencies(engine: sa.Engine, peer: Peer, samples: int) -> list[float]:
    query = sa.text(
        "SELECT extract(epoch FROM s.at - d.at) FROM procrastinate_events d "
        "JOIN procrastinate_events s ON s.job_id = d.job_id AND s.type = 'started' "
        "WHERE d.job_id = :id AND d.type = 'deferred'"
    )
    values = []
    for _ in range(samples):
        (job_id,) = peer.defer(1)
        wait_done(engine, [job_id], timeout=30)
        with engine.connect() as connection:
            values.append(float(connection.execute(query, {"id": job_id}).scalar_one()))
        time.sleep(0.02)
    return values


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--samples", type=int, default=50)
    args = parser.parse_args()

    with database() as url:
        engine = schema.engine_for(url)
        schema.upgrade(engine)
        runtime.setup(url)
        bare = bare_app(url)
        bare.open()
        c = args.concurrency
        full_peer = Peer(
            "manage.py worker",
            [sys.executable, "manage.py", "worker", "--queues", queues.DEFAULT,
             "--concurrency", f"{queues.DEFAULT}={c}"],
            "worker started on",
            {"DATABASE_URL": url, "WORKER_IMPORT_PATHS": "bench.noop_tasks", "LOG_LEVEL": "INFO"},
        )  # fmt: skip
        full_peer.defer = lambda n: deferring.defer_batch(noop, [{}] * n, noop.defer_options({}))
        bare_peer = Peer(
            "bare procrastinate",
            [sys.executable, "-m", "bench.bare_worker", url, str(c)],
            "Starting worker on",
            {"PROCRASTINATE_LOG_LEVEL": "INFO"},
        )
        bare_peer.defer = lambda n: bare.tasks["bench.bare_noop"].batch_defer(*[{}] * n)

        rates: dict[str, list[float]] = {full_peer.name: [], bare_peer.name: []}
        lat: dict[str, list[float]] = {full_peer.name: [], bare_peer.name: []}
        for round_no in range(1, args.rounds + 1):
            for peer in (bare_peer, full_peer) if round_no % 2 else (full_peer, bare_peer):
                reset(engine)
                with peer.running():
                    ids = peer.defer(args.jobs)
                    wait_done(engine, ids)
                    rate = args.jobs / span(engine, ids)
                    rates[peer.name].append(rate)
                    print(f"round {round_no}: {peer.name:<20} {rate:8.0f} jobs/s", flush=True)
                    if round_no == 1:
                        lat[peer.name] = latencies(engine, peer, args.samples)
        bare.close()
        runtime.teardown()
        engine.dispose()

    print()
    print(f"{args.jobs} no-op jobs, concurrency {c}, {args.rounds} rounds (median jobs/s):")
    for name, values in rates.items():
        p50, p95 = percentile(lat[name], 0.5), percentile(lat[name], 0.95)
        print(
            f"  {name:<20} {statistics.median(values):8.0f} jobs/s   "
            f"defer->start p50 {p50 * 1000:6.1f} ms  p95 {p95 * 1000:6.1f} ms"
        )
    ratio = statistics.median(rates[full_peer.name]) / statistics.median(rates[bare_peer.name])
    print(f"  ratio manage.py worker / bare procrastinate: {ratio:.2f}x")


if __name__ == "__main__":
    main()
