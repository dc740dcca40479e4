"""Throughput, latency and enqueue rate of ``manage.py worker`` beside the queues it replaces.

    python bench/throughput.py [--jobs 5000] [--concurrency 10] [--rounds 3] [--samples 50]
                               [--quick] [--big] [--systems ours,bare,pgqueuer,celery]

The peers, on one PostgreSQL server (the embedded PostgreSQL 18 in a temporary directory, or
``DATABASE_URL``), each with one worker process and the same concurrency:

- ``manage.py worker`` with a no-op task, and with a task that inserts one row in its job's
  transaction (``bench/noop_tasks.py``);
- bare procrastinate 3.10 with a sync no-op task (``bench/bare_worker.py``);
- PgQueuer with its defaults (its own ``run`` command: batch 10, asyncpg), a no-op entrypoint and
  a one-row entrypoint (the row on a connection of its own: PgQueuer has no job transaction);
- Celery + Redis, threads pool, a no-op task, results in Redis (when ``redis-server`` is
  installed; started on a free port of 127.0.0.1 and stopped by the benchmark).

Every run uses the same method: empty the system's tables, prefill ``--jobs`` jobs, start the
worker, and poll the system's own tables (or result store) every 10 ms: jobs/s is the jobs
finished between the first poll that sees one finished and the poll that sees them all, over
that time. Process start-up is not measured. Each round runs every peer once, in an order that
changes from round to round; figures are medians over rounds, ratios are medians of the ratios
within a round (the machine is shared: absolute figures move, ratios much less).

After its no-op run, each worker stays idle while single jobs are deferred one at a time:
defer -> start latency from the server's timestamps (procrastinate's ``deferred`` and ``started``
events, PgQueuer's ``queued`` and ``picked`` log rows; Celery: wall clock before ``delay()`` to
the clock read by the task). Enqueue rates are measured with no worker running: one job per
call (``noop.delay()``, procrastinate's sync ``defer()``, PgQueuer's ``enqueue``, Celery's
``delay()``) and 100 per call (``group(...)``, ``batch_defer``, PgQueuer's list enqueue, Celery's
``group``); ours also inside a ``session_scope`` of its own (app code deferring with its writes
pays a BEGIN and a COMMIT around it).

``--big`` adds ``manage.py worker`` (no-op) on a second database holding 1,000,000 succeeded jobs
and their 3 events each, to every round, and prints its ratio to the empty tables.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import math
import os
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench import harness, systems  # noqa: E402
from bench.harness import database  # noqa: E402  (bench/indexing.py imports it from here)
from bench.noop_tasks import BENCH_ROWS_DDL  # noqa: E402
from worker import schema  # noqa: E402

#: Seconds between two polls of a system's finished jobs.
POLL = 0.01
#: Seconds a run may go without a job finishing (start-up included) before it is given up.
STALL_TIMEOUT = 60
#: Jobs per call of the batched enqueue.
BATCH = 100

NO_OP, ONE_ROW = systems.NOOP, systems.ONE_ROW
ALL_SYSTEMS = ("ours", "bare", "pgqueuer", "celery")


@dataclasses.dataclass
class Run:
    """One line of work in every round: a system draining prefilled jobs of one kind."""

    key: str
    system: systems.System
    kind: str
    latency: bool = False
    #: Key of the run this one is compared with: they run one after the other in every round.
    beside: str | None = None


@dataclasses.dataclass
class Figures:
    rates: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    latencies: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    enqueue_one: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    enqueue_batch: dict[str, list[float]] = dataclasses.field(default_factory=dict)


def drain(
    run: Run, processes: harness.Processes, jobs: int, concurrency: int, samples: int
) -> tuple[float, list[float]]:
    """Jobs/s of one run, and ``samples`` defer -> start latencies of its idle worker."""
    system = run.system
    system.reset()
    system.prefill(run.kind, jobs)
    system.analyze()
    command, env = system.command(concurrency)
    with processes.running(run.key, command, env) as process:
        first: tuple[float, int] | None = None
        progress = (time.monotonic(), -1)
        while True:
            done = system.finished(jobs)
            now = time.perf_counter()
            if first is None and done > 0:
                first = (now, done)
            if done >= jobs:
                break
            process.check()
            if done != progress[1]:
                progress = (time.monotonic(), done)
            elif time.monotonic() - progress[0] > STALL_TIMEOUT:
                raise SystemExit(
                    f"{run.key}: {done} of {jobs} jobs done, none for {STALL_TIMEOUT} s; "
                    f"{system.describe_unfinished()}\n--- worker log (end) ---\n"
                    + "\n".join(process.output().splitlines()[-30:])
                )
            time.sleep(POLL)
        assert first is not None
        system.verify(run.kind, jobs)
        if now <= first[0]:
            raise SystemExit(f"{run.key}: all {jobs} jobs done within one poll; use more --jobs")
        rate = (jobs - first[1]) / (now - first[0])
        latencies = []
        if samples:
            time.sleep(0.2)
            for _ in range(samples):
                latencies.append(system.latency())
                process.check()
                time.sleep(random.uniform(0.015, 0.025))
    return rate, latencies


def enqueue(system: systems.System, one: int, batches: int) -> tuple[float, float]:
    """Jobs/s enqueued one per call, and ``BATCH`` per call, with no worker running."""
    system.reset()
    for _ in range(5):  # connections, prepared statements, imports: not what is measured
        system.enqueue_one()
    system.enqueue_batch(BATCH)
    started = time.perf_counter()
    for _ in range(one):
        system.enqueue_one()
    one_rate = one / (time.perf_counter() - started)
    started = time.perf_counter()
    for _ in range(batches):
        system.enqueue_batch(BATCH)
    batch_rate = batches * BATCH / (time.perf_counter() - started)
    system.reset()
    return one_rate, batch_rate


def order(items: list[Run], round_no: int, rounds: int) -> list[Run]:
    """Every round another order: rotated by a share of the list, every other one reversed.

    A run ``beside`` another comes right after it, or right before it every other round: their
    ratio is then least touched by the noise of a shared machine, which drifts over minutes.
    """
    alone = [run for run in items if run.beside is None]
    shift = (round_no * len(alone)) // max(rounds, 1) % len(alone)
    rotated = alone[shift:] + alone[:shift]
    ordered = rotated[::-1] if round_no % 2 else rotated
    for run in items:
        if run.beside is not None:
            at = next(i for i, other in enumerate(ordered) if other.key == run.beside)
            ordered.insert(at if round_no % 2 else at + 1, run)
    return ordered


def benchmark(args: argparse.Namespace, runs: list[Run], producers: dict[str, systems.System],
              processes: harness.Processes) -> Figures:  # fmt: skip
    figures = Figures()
    per_round = math.ceil(args.samples / args.rounds)
    for round_no in range(args.rounds):
        for run in order(runs, round_no, args.rounds):
            rate, latencies = drain(
                run, processes, args.jobs, args.concurrency, per_round if run.latency else 0
            )
            figures.rates.setdefault(run.key, []).append(rate)
            figures.latencies.setdefault(run.system.label, []).extend(latencies)
            extra = ""
            if latencies:
                extra = f"   defer->start p50 {harness.percentile(latencies, 0.5) * 1000:5.1f} ms"
            print(f"round {round_no + 1}: {run.key:<22} {rate:8.0f} jobs/s{extra}", flush=True)
        names = list(producers)
        shift = round_no % len(names)
        for name in names[shift:] + names[:shift]:
            one, batch = enqueue(producers[name], args.enqueue, args.batches)
            figures.enqueue_one.setdefault(name, []).append(one)
            figures.enqueue_batch.setdefault(name, []).append(batch)
            print(
                f"round {round_no + 1}: enqueue {name:<14} {one:8.0f} jobs/s one by one, "
                f"{batch:8.0f} jobs/s x{BATCH}",
                flush=True,
            )
    return figures


def sibling_url(url: str, dbname: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{dbname}"))


@contextlib.contextmanager
def big_database(url: str, rows: int) -> Iterator[str]:
    """A second database on the same server, migrated, holding ``rows`` succeeded jobs."""
    name = f"bench_1m_{os.getpid()}"
    admin = systems.Database(url)
    admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    admin.execute(f"CREATE DATABASE {name}")
    try:
        big_url = sibling_url(url, name)
        prepare(big_url)
        started = time.perf_counter()
        fill_finished(big_url, rows)
        print(f"{rows:,} succeeded jobs and their events written in "
              f"{time.perf_counter() - started:.0f} s", flush=True)  # fmt: skip
        yield big_url
    finally:
        systems.unbind_runtime()
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()


def fill_finished(url: str, rows: int) -> None:
    """``rows`` succeeded jobs with their deferred/started/succeeded events, in two statements.

    Triggers are off while filling (``session_replication_role``): the rows are written as they
    would be at the end of their life, not replayed through it.
    """
    target = systems.Database(url)
    try:
        target.execute("SET session_replication_role = replica")
        target.execute(
            "INSERT INTO procrastinate_jobs (queue_name, task_name, args, status) "
            "SELECT 'default', 'bench.noop', '{}', 'succeeded' FROM generate_series(1, %s)",
            (rows,),
        )
        target.execute(
            "INSERT INTO procrastinate_events (job_id, type, at) "
            "SELECT j.id, e.type, now() - interval '2 days' + j.id * interval '10 ms' + e.after "
            "FROM procrastinate_jobs j CROSS JOIN (VALUES "
            "('deferred'::procrastinate_job_event_type, interval '0'), "
            "('started', interval '4 ms'), ('succeeded', interval '5 ms')) AS e(type, after) "
            "ORDER BY j.id, e.after"
        )
        target.execute("RESET session_replication_role")
        target.vacuum("procrastinate_jobs", "procrastinate_events")
    finally:
        target.close()


def prepare(url: str) -> None:
    engine = schema.engine_for(url)
    try:
        schema.upgrade(engine)
    finally:
        engine.dispose()
    target = systems.Database(url)
    target.execute(BENCH_ROWS_DDL)
    target.close()


@dataclasses.dataclass
class Peers:
    """What a run of the benchmark measures, built on the database (and Redis) it runs on."""

    runs: list[Run] = dataclasses.field(default_factory=list)
    producers: dict[str, systems.System] = dataclasses.field(default_factory=dict)
    built: list[systems.System] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)

    def add(self, system: systems.System, producer: str | None, *runs: Run) -> None:
        self.built.append(system)
        self.runs.extend(runs)
        if producer:
            self.producers[producer] = system

    def optional(self, name: str, build: Callable[[], systems.System]) -> systems.System | None:
        try:
            return build()
        except ImportError as error:
            self.notes.append(f"{name} skipped: {error} (pip install -e '.[bench]')")
            return None

    def close(self) -> None:
        while self.built:
            system = self.built.pop()
            with contextlib.suppress(Exception):
                system.close()


def build_peers(
    args: argparse.Namespace, url: str, stack: contextlib.ExitStack, processes: harness.Processes
) -> Peers:
    peers = Peers()
    stack.callback(peers.close)
    if "ours" in args.systems:
        ours = systems.Ours(url)
        peers.add(ours, "ours", Run("ours no-op", ours, NO_OP, latency=True),
                  Run("ours one-row", ours, ONE_ROW))  # fmt: skip
        peers.add(systems.OursInTransaction(url), "ours in a transaction")
    if "bare" in args.systems:
        bare = systems.BareProcrastinate(url)
        peers.add(bare, "procrastinate", Run("bare no-op", bare, NO_OP, latency=True))
    if "pgqueuer" in args.systems and (
        pgq := peers.optional("PgQueuer", lambda: systems.PgQueuer(url))
    ):
        peers.add(pgq, "pgqueuer", Run("pgqueuer no-op", pgq, NO_OP, latency=True),
                  Run("pgqueuer one-row", pgq, ONE_ROW))  # fmt: skip
    if "celery" in args.systems:
        redis_url = stack.enter_context(harness.redis_server(processes))
        if redis_url is None:
            peers.notes.append("Celery + Redis skipped: redis-server is not installed")
        elif celery := peers.optional("Celery", lambda: systems.CeleryRedis(redis_url)):
            peers.add(celery, "celery", Run("celery no-op", celery, NO_OP, latency=True))
    return peers


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, help="prefilled jobs per run (default 5000)")
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--rounds", type=int, help="default 3")
    parser.add_argument("--samples", type=int, help="latency samples per worker (default 50)")
    parser.add_argument("--enqueue", type=int, help="jobs enqueued one by one per round (1000)")
    parser.add_argument("--batches", type=int, help=f"calls of {BATCH} jobs per round (50)")
    parser.add_argument("--quick", action="store_true", help="a smoke run of about one minute")
    parser.add_argument("--big", action="store_true", help="add the 1,000,000-finished-jobs case")
    parser.add_argument("--big-rows", type=int, default=1_000_000, help=argparse.SUPPRESS)
    parser.add_argument("--systems", default=",".join(ALL_SYSTEMS),
                        help=f"comma-separated subset of {','.join(ALL_SYSTEMS)}")  # fmt: skip
    args = parser.parse_args()
    defaults = (
        {"jobs": 1000, "rounds": 1, "samples": 20, "enqueue": 300, "batches": 10}
        if args.quick
        else {"jobs": 5000, "rounds": 3, "samples": 50, "enqueue": 1000, "batches": 50}
    )
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.systems = [name.strip() for name in args.systems.split(",") if name.strip()]
    if unknown := set(args.systems) - set(ALL_SYSTEMS):
        parser.error(f"unknown systems: {', '.join(sorted(unknown))}")
    if args.big and "ours" not in args.systems:
        parser.error("--big measures manage.py worker: keep 'ours' in --systems")
    return args


def commit_time(server: systems.Database, samples: int = 100) -> float:
    """Median seconds of a one-row INSERT and its COMMIT: this disk's flush, which bounds a
    queue that commits once per job."""
    times = []
    for _ in range(samples):
        started = time.perf_counter()
        server.execute("INSERT INTO bench_rows (job_id) VALUES (NULL)")
        times.append(time.perf_counter() - started)
    server.execute("TRUNCATE bench_rows")
    return statistics.median(times)


def tree_state() -> str:
    def git(*command: str) -> str:
        return subprocess.run(
            ["git", *command], cwd=REPO, capture_output=True, text=True, check=False
        ).stdout.strip()

    dirty = git("status", "--porcelain", "--", "worker", "migrations", "bench", "manage.py")
    return f"{git('rev-parse', '--short', 'HEAD')}{' + uncommitted changes' if dirty else ''}"


def main() -> None:
    args = parse_args()
    with harness.terminated_on_signals(), database() as url:
        processes = harness.Processes()
        try:
            with contextlib.ExitStack() as stack:
                prepare(url)
                server = systems.Database(url)
                version = server.scalar("SHOW server_version")
                commit = commit_time(server)
                server.close()
                peers = build_peers(args, url, stack, processes)
                print(
                    f"{args.jobs} prefilled jobs per run, concurrency {args.concurrency}, "
                    f"{args.rounds} round(s), PostgreSQL {version} (a one-row commit: "
                    f"{commit * 1000:.1f} ms), tree {tree_state()}",
                    flush=True,
                )
                for note in peers.notes:
                    print(f"note: {note}", flush=True)
                if args.big:
                    big_url = stack.enter_context(big_database(url, args.big_rows))
                    big = systems.Ours(big_url, label="`manage.py worker`, 1 M finished jobs")
                    peers.add(big, None, Run("ours no-op 1M", big, NO_OP, beside="ours no-op"))
                figures = benchmark(args, peers.runs, peers.producers, processes)
        finally:
            systems.unbind_runtime()
            processes.close()
    report(args, peers.runs, figures)
    for note in peers.notes:
        print(f"note: {note}")


def median_ratio(series: dict[str, list[float]], top: str, bottom: str) -> float | None:
    """Median over rounds of ``top / bottom`` within each round."""
    a, b = series.get(top), series.get(bottom)
    if not a or not b:
        return None
    return statistics.median(x / y for x, y in zip(a, b, strict=True))


def fmt_rate(values: list[float] | None) -> str:
    return f"{statistics.median(values):,.0f}" if values else "—"


def report(args: argparse.Namespace, runs: list[Run], figures: Figures) -> None:
    print()
    print(
        f"{args.jobs:,} prefilled jobs, one worker process, concurrency {args.concurrency}, "
        f"{args.rounds} round(s) interleaved: median jobs/s; latency with an idle worker"
    )
    print()
    report_throughput(runs, figures)
    print()
    report_enqueue(figures)
    print()
    report_targets(figures)


def report_throughput(runs: list[Run], figures: Figures) -> None:
    print("| system | jobs/s no-op | jobs/s one-row | defer→start p50 / p95 |")
    print("|---|---:|---:|---|")
    keys = {(run.system.label, run.kind): run.key for run in runs}
    for label in dict.fromkeys(run.system.label for run in runs):
        latencies = figures.latencies.get(label)
        latency = "—"
        if latencies:
            p50, p95 = harness.percentile(latencies, 0.5), harness.percentile(latencies, 0.95)
            latency = f"{p50 * 1000:.1f} / {p95 * 1000:.1f} ms"
        noop = figures.rates.get(keys.get((label, NO_OP), ""))
        one_row = figures.rates.get(keys.get((label, ONE_ROW), ""))
        print(f"| {label} | {fmt_rate(noop)} | {fmt_rate(one_row)} | {latency} |")
    print()
    print("Jobs/s in each round:")
    for run in runs:
        values = " / ".join(f"{value:,.0f}" for value in figures.rates.get(run.key, []))
        print(f"  {run.key:<22} {values}")
    print()
    print("Ratios (median of the ratios within each round):")
    for text, top, bottom in RATIOS:
        if (value := median_ratio(figures.rates, top, bottom)) is not None:
            print(f"  {text:<58} {value:6.2f}x")


RATIOS = [
    ("no-op: manage.py worker / PgQueuer defaults", "ours no-op", "pgqueuer no-op"),
    ("no-op: manage.py worker / bare procrastinate", "ours no-op", "bare no-op"),
    ("no-op: manage.py worker / Celery + Redis", "ours no-op", "celery no-op"),
    ("one-row: manage.py worker / PgQueuer defaults, no-op", "ours one-row", "pgqueuer no-op"),
    ("one-row: manage.py worker / PgQueuer, one-row", "ours one-row", "pgqueuer one-row"),
    ("one-row: manage.py worker / bare procrastinate, no-op", "ours one-row", "bare no-op"),
    ("1 M finished jobs / empty tables, manage.py worker no-op", "ours no-op 1M", "ours no-op"),
]

ENQUEUE_LABELS = {
    "ours": f"`.delay()` / `group(...)` of {BATCH}",
    "ours in a transaction": "the same inside a `session_scope` (BEGIN ... COMMIT around it)",
    "procrastinate": f"procrastinate sync `defer()` / `batch_defer` of {BATCH}",
    "pgqueuer": f"PgQueuer `enqueue` / list enqueue of {BATCH}",
    "celery": f"Celery `delay()` / `group(...)` of {BATCH}",
}

ENQUEUE_RATIOS = [
    ("`.delay()` / procrastinate sync defer", "one", "ours", "procrastinate"),
    (
        "`.delay()` in a transaction / procrastinate sync defer",
        "one",
        "ours in a transaction",
        "procrastinate",
    ),
    ("`.delay()` / PgQueuer enqueue", "one", "ours", "pgqueuer"),
    ("`.delay()` / Celery delay", "one", "ours", "celery"),
    (f"group of {BATCH} / PgQueuer list enqueue", "batch", "ours", "pgqueuer"),
    (f"group of {BATCH} / procrastinate batch_defer", "batch", "ours", "procrastinate"),
]


def report_enqueue(figures: Figures) -> None:
    print(f"| enqueue, jobs/s (median) | one by one | {BATCH} per call |")
    print("|---|---:|---:|")
    for name, label in ENQUEUE_LABELS.items():
        if name in figures.enqueue_one:
            one, batch = figures.enqueue_one[name], figures.enqueue_batch[name]
            print(f"| {label} | {fmt_rate(one)} | {fmt_rate(batch)} |")
    print()
    for text, kind, top, bottom in ENQUEUE_RATIOS:
        series = figures.enqueue_one if kind == "one" else figures.enqueue_batch
        if (value := median_ratio(series, top, bottom)) is not None:
            print(f"  {text:<58} {value:6.2f}x")


def report_targets(figures: Figures) -> None:
    """The figures of issue 10's "Done when", each against its target."""
    ours_latency = figures.latencies.get(systems.Ours.label)
    p50 = harness.percentile(ours_latency, 0.5) * 1000 if ours_latency else None
    rates, one, batch = figures.rates, figures.enqueue_one, figures.enqueue_batch
    targets = [
        ("no-op >= 0.5x PgQueuer's defaults (aim 1.0x)",
         median_ratio(rates, "ours no-op", "pgqueuer no-op"), 0.5, "x"),
        # PgQueuer with its defaults running the same one-row task (its row commits on a
        # connection of its own; ours in the job's transaction with the job's end) ...
        ("one-row >= 0.35x PgQueuer's defaults, same task",
         median_ratio(rates, "ours one-row", "pgqueuer one-row"), 0.35, "x"),
        # ... and the stricter reading: against PgQueuer's no-op
        ("  stricter reading: against PgQueuer's no-op",
         median_ratio(rates, "ours one-row", "pgqueuer no-op"), 0.35, "x"),
        ("defer->start p50 <= 3 ms with an idle worker", p50, -3.0, " ms"),
        ("group of 100 >= 0.5x PgQueuer's list enqueue",
         median_ratio(batch, "ours", "pgqueuer"), 0.5, "x"),
        ("`.delay()` >= 1.0x procrastinate's sync defer",
         median_ratio(one, "ours", "procrastinate"), 1.0, "x"),
        ("1 M finished jobs within 10 % of the empty table (>= 0.90x)",
         median_ratio(rates, "ours no-op 1M", "ours no-op"), 0.9, "x"),
    ]  # fmt: skip
    print("Issue 10, done when:")
    for text, value, target, unit in targets:
        if value is None:
            shown, verdict = "—", "not measured"
        else:
            # A negative target is an upper bound.
            met = value <= -target if target < 0 else value >= target
            shown, verdict = f"{value:.2f}{unit}", "met" if met else "NOT met"
        print(f"  {text:<62} {shown:>9}  {verdict}")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
