"""Retention's cost: how fast ``jobs prune`` deletes, and how long one of its transactions lasts.

    python bench/retention.py [--jobs 100000] [--batch-size 1000]

Fills a scratch database (``DATABASE_URL``, whose tables it empties, or an embedded PostgreSQL
in a temporary directory) with ``--jobs`` succeeded jobs that ended two days ago, each with its
three events (deferred, started, succeeded) and its outcome row, plus as many recent ones that
must stay; then runs retention's dry run and the prune itself (``worker.maintenance.retention``,
the code of ``manage.py jobs prune``) and prints rows/s, the longest batch transaction, and
the time of the next (hourly) prune, which finds nothing to delete among the recent jobs.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import database
from worker import db, runtime, schema
from worker.jobs.uow import UnitOfWork
from worker.maintenance import retention

FILL = [
    "TRUNCATE procrastinate_jobs, procrastinate_events, task_results CASCADE",
    # N jobs that ended 2 days ago, N that ended now: the triggers write their events
    "INSERT INTO procrastinate_jobs (queue_name, task_name, args) "
    "SELECT 'default', 'bench.noop', '{}' FROM generate_series(1, 2 * :jobs)",
    "UPDATE procrastinate_jobs SET status = 'doing', runs = 1",
    "UPDATE procrastinate_jobs SET status = 'succeeded'",
    "UPDATE procrastinate_events SET at = at - interval '2 days' "
    "WHERE job_id <= (SELECT min(id) FROM procrastinate_jobs) + :jobs - 1",
    "INSERT INTO task_results (job_id, task_name, queue_name, status, attempt, started_at, "
    "finished_at, duration) SELECT j.id, j.task_name, j.queue_name, 'SUCCESS', 1, e.at, e.at, 0 "
    "FROM procrastinate_jobs AS j JOIN procrastinate_events AS e "
    "ON e.job_id = j.id AND e.type = 'succeeded'",
    "VACUUM ANALYZE",
]


def fill(url: str, jobs: int) -> float:
    started = time.monotonic()
    engine = schema.engine_for(url)
    try:
        schema.upgrade(engine)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            for statement in FILL:
                connection.execute(sa.text(statement), {"jobs": jobs})
    finally:
        engine.dispose()
    return time.monotonic() - started


def prune(batch_size: int, *, dry_run: bool) -> tuple[retention.PruneReport, float]:
    """The report, and the longest time between two batches (one transaction and its read)."""
    policy = retention.RetentionPolicy(
        finished=timedelta(days=1),
        failed=timedelta(days=7),
        mail_deliveries=timedelta(days=30),
        batch_size=batch_size,
    )
    marks = [time.monotonic()]
    with UnitOfWork() as uow:
        report = retention.prune(
            uow, policy, dry_run=dry_run, progress=lambda *_: marks.append(time.monotonic())
        )
    gaps = [b - a for a, b in itertools.pairwise(marks)]
    return report, max(gaps, default=0.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=retention.BATCH_SIZE)
    args = parser.parse_args()
    with database() as url:
        filled = fill(url, args.jobs)
        print(f"filled {args.jobs} old + {args.jobs} recent succeeded jobs in {filled:.1f} s")
        runtime.setup(url, pool_size=1)
        try:
            dry, _ = prune(args.batch_size, dry_run=True)
            print(f"dry run: {dry.rows} in {dry.seconds:.2f} s")
            report, longest = prune(args.batch_size, dry_run=False)
            again, _ = prune(args.batch_size, dry_run=False)
            with db.session_scope() as session:
                left = session.scalar(sa.text("SELECT count(*) FROM procrastinate_jobs"))
        finally:
            runtime.teardown()
    deleted = sum(report.rows.values())
    rate = deleted / report.seconds
    print(f"prune: {report.rows} in {report.seconds:.2f} s ({rate:,.0f} rows/s)")
    print(
        f"{report.batches} transactions of at most {report.largest_batch} rows; the longest "
        f"batch (its read and its delete) took {longest * 1000:.0f} ms; {left} jobs left"
    )
    print(f"the next prune, with nothing to delete among them: {again.seconds:.2f} s")


if __name__ == "__main__":
    main()
