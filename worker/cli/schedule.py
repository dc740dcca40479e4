"""``manage.py schedule`` (the periodic jobs and the leader) and ``manage.py jobs prune``."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from worker import db, runtime
from worker.cli.errors import reaching
from worker.config import Settings
from worker.maintenance import retention

#: Rows per transaction that ``jobs prune --batch-size`` accepts at most.
MAX_BATCH_SIZE = retention.BATCH_SIZE


def add_commands(commands: Any) -> None:
    schedule = commands.add_parser(
        "schedule",
        help="periodic jobs: enabled?, trigger, last tick and its outcome, next time, leader",
    )
    schedule.set_defaults(handler=cmd_schedule)


def add_prune_command(actions: Any) -> None:
    """``jobs prune``, registered under ``manage.py jobs``."""
    prune = actions.add_parser(
        "prune",
        help="delete finished jobs, their events and outcomes, old mail deliveries and "
        "scheduler ticks past their retention (WORKER_RETAIN_*)",
    )
    prune.add_argument(
        "--dry-run", action="store_true", help="count what would be deleted, delete nothing"
    )
    prune.add_argument(
        "--batch-size",
        type=_batch_size,
        default=retention.BATCH_SIZE,
        help=f"rows per transaction (1..{MAX_BATCH_SIZE}, default {retention.BATCH_SIZE})",
    )
    prune.set_defaults(handler=cmd_prune)


def cmd_schedule(args: argparse.Namespace, settings: Settings) -> int:
    from worker.maintenance import schedule, status  # imports the task modules

    table = schedule.table(settings)
    with runtime.database_url(settings) as url, reaching(url):
        runtime.setup(url, pool_size=1, settings=settings)
        try:
            with db.session_scope() as session:
                states = status.jobs(session, table, now=datetime.now(UTC))
                leader = status.leader(session)
        finally:
            runtime.teardown()
    print(
        f"{'JOB':<30} {'ON':<3} {'TRIGGER':<24} {'POLICY':<9} {'LAST TICK':<26} "
        f"{'OUTCOME':<15} {'JOB ID':>8} {'STATUS':<10} NEXT TICK"
    )
    for job in states:
        print(
            f"{job.name:<30} {'yes' if job.enabled else 'no':<3} {job.trigger:<24} "
            f"{job.policy:<9} {_time(job.last_tick):<26} {job.outcome or '-':<15} "
            f"{job.job_id or '-':>8} {job.job_status or '-':<10} {_time(job.next_tick)}"
        )
    for job in states:
        if not job.enabled:
            print(f"{job.name} is off: needs {job.switch}")
    if not settings.scheduler:
        print("WORKER_SCHEDULER=false: this configuration runs no scheduler")
    if leader is None:
        print("leader: none (no worker process runs a scheduler)")
    else:
        print(
            f"leader: pid {leader.pid or '?'} on {leader.host or '?'}, connected since "
            f"{_time(leader.connected_since)}"
        )
    return 0


def cmd_prune(args: argparse.Namespace, settings: Settings) -> int:
    from worker.jobs.uow import UnitOfWork

    policy = retention.RetentionPolicy.from_settings(settings)
    policy = retention.RetentionPolicy(
        finished=policy.finished, failed=policy.failed, mail_deliveries=policy.mail_deliveries,
        batch_size=args.batch_size,
    )  # fmt: skip
    verb = "would delete" if args.dry_run else "deleted"

    def progress(table: str, rows: int, total: int) -> None:
        if not args.dry_run:
            print(f"{table:<22} {rows:>6} {verb} ({total} so far)", flush=True)

    with runtime.database_url(settings) as url, reaching(url):
        runtime.setup(url, pool_size=1, settings=settings)
        try:
            with UnitOfWork() as uow:
                report = retention.prune(uow, policy, dry_run=args.dry_run, progress=progress)
        finally:
            runtime.teardown()
    for table, rows in report.rows.items():
        print(f"{table:<22} {rows:>8} {verb}")
    if not args.dry_run:
        print(
            f"{report.batches} transaction(s) of at most {report.largest_batch} rows "
            f"in {report.seconds:.2f} s"
        )
    return 0


def _time(moment: datetime | None) -> str:
    return "-" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _batch_size(value: str) -> int:
    try:
        size = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {value!r}") from None
    if not 1 <= size <= MAX_BATCH_SIZE:
        raise argparse.ArgumentTypeError(f"batch size {size} is outside 1..{MAX_BATCH_SIZE}")
    return size
