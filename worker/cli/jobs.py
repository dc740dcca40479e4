"""Job commands: ``defer``, ``jobs list|show|retry|cancel`` and ``queues``."""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from procrastinate.exceptions import AlreadyEnqueued
from sqlalchemy import orm

from worker import db, queues, runtime
from worker.app import app
from worker.cli import schedule
from worker.cli.errors import CommandError, reaching
from worker.config import Settings
from worker.jobs import admin, recycling

T = TypeVar("T")

STATUSES = ("todo", "doing", "succeeded", "failed", "cancelled", "aborted")


def add_commands(commands: Any) -> None:
    defer = commands.add_parser("defer", help="defer a job of TASK; prints the job id")
    defer.add_argument(
        "task",
        metavar="TASK",
        help="task name, as Dify calls it (send_email_code_login_mail_task) or as registered "
        "(mail.email_code_login); `manage.py tasks` lists them",
    )
    defer.add_argument(
        "--json", default="{}", dest="arguments", help="keyword arguments as a JSON object"
    )
    defer.add_argument("--queue", choices=queues.ALL_QUEUES, help="override the task's queue")
    defer.add_argument("--lock", type=_lock("lock"), help="lock: jobs sharing it run one at a time")
    defer.add_argument(
        "--queueing-lock",
        type=_lock("queueing_lock"),
        help="at most one waiting job with this key",
    )
    low, high = admin.PRIORITY_RANGE
    defer.add_argument(
        "--priority", type=_priority, help=f"higher runs first ({low}..{high}, default 0)"
    )
    defer.add_argument(
        "--schedule-in",
        type=_seconds,
        metavar="SECONDS",
        help=f"start no sooner than this (at most {admin.MAX_SCHEDULE_IN:.0f})",
    )
    defer.set_defaults(handler=cmd_defer)

    jobs = commands.add_parser("jobs", help="list, show, retry, cancel or prune jobs")
    actions = jobs.add_subparsers(dest="jobs_action", metavar="ACTION")
    actions.required = True
    listing = actions.add_parser("list", help="jobs, newest first")
    listing.add_argument("--queue")
    listing.add_argument("--status", choices=STATUSES)
    listing.add_argument("--task")
    listing.add_argument(
        "--limit",
        type=_limit,
        default=admin.LIST_LIMIT,
        help=f"rows to print (1..{admin.MAX_LIST_LIMIT}, default {admin.LIST_LIMIT})",
    )
    listing.set_defaults(handler=cmd_jobs_list)
    for name, handler, text in (
        ("show", cmd_jobs_show, "arguments, status, attempts, result, error and timings"),
        ("retry", cmd_jobs_retry, "put a failed job back in the queue"),
        ("cancel", cmd_jobs_cancel, "cancel a waiting job or abort a running one"),
    ):
        action = actions.add_parser(name, help=text)
        action.add_argument("job_id", type=_job_id, metavar="ID")
        action.set_defaults(handler=handler)
    schedule.add_prune_command(actions)

    stats = commands.add_parser(
        "queues",
        help="per queue: jobs by status and age of the oldest waiting job; then each live "
        "worker's jobs run and memory",
    )
    stats.set_defaults(handler=cmd_queues)


@contextlib.contextmanager
def _session(settings: Settings) -> Iterator[orm.Session]:
    with runtime.database_url(settings) as url, reaching(url):
        # no procrastinate pool: every command works on this one session (which fails within
        # WORKER_DB_CONNECT_TIMEOUT when the server does not answer)
        runtime.setup(url, pool_size=1, settings=settings, open_sync_pool=False)
        app.import_paths = [*app.import_paths, *settings.import_paths]
        try:
            with db.session_scope() as session:
                yield session
        except admin.InvalidJobInput as exc:
            raise CommandError(str(exc), exit_code=2) from None
        except admin.JobCommandError as exc:
            raise CommandError(str(exc)) from None
        finally:
            runtime.teardown()


def cmd_defer(args: argparse.Namespace, settings: Settings) -> int:
    try:
        arguments = admin.parse_arguments(args.arguments)
    except admin.InvalidJobInput as exc:
        raise CommandError(str(exc), exit_code=2) from None
    with _session(settings) as session:
        try:
            job_id = admin.defer(
                session,
                args.task,
                arguments,
                queue=args.queue,
                lock=args.lock,
                queueing_lock=args.queueing_lock,
                schedule_in=args.schedule_in,
                priority=args.priority,
            )
        except AlreadyEnqueued:
            raise CommandError(
                f"a {args.task} job with queueing lock {args.queueing_lock!r} is already waiting"
            ) from None
    print(job_id)
    return 0


def cmd_jobs_list(args: argparse.Namespace, settings: Settings) -> int:
    with _session(settings) as session:
        rows = admin.list_jobs(
            session, queue=args.queue, status=args.status, task=args.task, limit=args.limit
        )
    print(f"{'ID':>8}  {'QUEUE':<16} {'STATUS':<10} {'ATT':>3}  {'OUTCOME':<8} TASK")
    for row in rows:
        print(
            f"{row.id:>8}  {row.queue_name:<16} {row.status:<10} {row.attempts:>3}  "
            f"{row.outcome or '-':<8} {row.task_name}"
        )
    return 0


def cmd_jobs_show(args: argparse.Namespace, settings: Settings) -> int:
    with _session(settings) as session:
        details = admin.show_job(session, args.job_id)
    for key in (
        "id", "task_name", "queue_name", "state", "status", "attempts", "lost_runs",
        "blamed_runs", "interrupted_runs", "runs", "priority", "lock",
        "queueing_lock", "args", "scheduled_at", "deferred_at", "last_started_at",
        "started_at", "finished_at", "ended_at", "duration", "result", "error", "worker_id",
        "progress",
    ):  # fmt: skip
        value = details[key]
        if key in ("args", "result", "progress"):
            value = json.dumps(value, ensure_ascii=False, default=str)
        print(f"{key:<16} {'-' if value is None else value}")
    return 0


def cmd_jobs_retry(args: argparse.Namespace, settings: Settings) -> int:
    with _session(settings) as session:
        admin.retry_job(session, args.job_id)
    print(f"job {args.job_id} queued again")
    return 0


def cmd_jobs_cancel(args: argparse.Namespace, settings: Settings) -> int:
    with _session(settings) as session:
        outcome = admin.cancel_job(session, args.job_id)
    print(f"job {args.job_id} {outcome}")
    return 0


def cmd_queues(args: argparse.Namespace, settings: Settings) -> int:
    with _session(settings) as session:
        stats = admin.queue_stats(session, list(queues.ALL_QUEUES))
        workers = recycling.worker_usage(session, settings.stalled_after)
    columns = ("todo", "doing", "succeeded", "failed", "cancelled", "aborted")
    print(f"{'QUEUE':<18}" + "".join(f"{c:>10}" for c in columns) + "  OLDEST WAITING")
    for queue in stats:
        oldest = "-" if queue.oldest_waiting is None else f"{queue.oldest_waiting:.0f}s"
        counts = "".join(f"{queue.counts.get(c, 0):>10}" for c in columns)
        print(f"{queue.queue:<18}{counts}  {oldest}")
    _print_workers(workers)
    return 0


def _print_workers(workers: list[Any]) -> None:
    """Live workers: jobs run and resident memory of each, against its recycling limits."""
    if not workers:
        return
    print()
    print(f"{'WORKER':<8}{'PID':>8}  {'HOST':<20}{'JOBS RUN':>12}{'MEMORY MiB':>14}  BEAT  QUEUES")
    for w in workers:
        jobs = f"{w.jobs_run}" + (f"/{w.max_jobs}" if w.max_jobs else "")
        rss = "-" if w.rss_bytes is None else f"{w.rss_bytes / recycling.MIB:.0f}"
        memory = rss + (f"/{w.max_memory_mb}" if w.max_memory_mb else "")
        host = (w.hostname or "-")[:19]
        beat = f"{float(w.heartbeat_age):.0f}s"
        served = ",".join(w.queues or ()) or "-"
        print(f"{w.id:<8}{w.pid or '-':>8}  {host:<20}{jobs:>12}{memory:>14}  {beat:>4}  {served}")


def _seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {value!r}") from None
    return _checked(admin.check_schedule_in, seconds)


def _priority(value: str) -> int:
    try:
        priority = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {value!r}") from None
    return _checked(admin.check_priority, priority)


def _limit(value: str) -> int:
    try:
        limit = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {value!r}") from None
    if not 1 <= limit <= admin.MAX_LIST_LIMIT:
        raise argparse.ArgumentTypeError(f"limit {limit} is outside 1..{admin.MAX_LIST_LIMIT}")
    return limit


def _job_id(value: str) -> int:
    try:
        job_id = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {value!r}") from None
    if not 1 <= job_id <= admin.MAX_JOB_ID:
        raise argparse.ArgumentTypeError(f"job ids are 1..{admin.MAX_JOB_ID}, got {job_id}")
    return job_id


def _lock(option: str) -> Callable[[str], str]:
    def parse(value: str) -> str:
        return _checked(functools.partial(admin.check_lock, option), value)

    return parse


def _checked(check: Callable[[T], None], value: T) -> T:
    try:
        check(value)
    except admin.InvalidJobInput as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return value
