"""``manage.py worker``: every queue (or ``--queues``) served by one process.

With ``--max-jobs``/``--max-memory`` (``WORKER_MAX_JOBS``/``WORKER_MAX_MEMORY_MB``) the process
drains and replaces itself with a fresh one once a limit is reached (``worker.jobs.recycling``),
inside the embedded server's attachment: the server keeps running across the replacement.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import time
from collections.abc import Callable
from typing import Any

import psycopg

from worker import queues, runtime, schema
from worker.cli import dashboard
from worker.cli.errors import CommandError, reaching
from worker.config import Settings, parse_concurrency
from worker.jobs import recycling
from worker.server import WorkerPlan, WorkerStopped, serve

logger = logging.getLogger(__name__)


def add_commands(commands: Any) -> None:
    worker = commands.add_parser(
        "worker", help="run the worker: every queue in this one process unless --queues is given"
    )
    worker.add_argument(
        "--queues",
        type=_queue_list,
        default=None,
        help=f"comma-separated queues to serve (default: all of {', '.join(queues.ALL_QUEUES)})",
    )
    worker.add_argument(
        "--concurrency",
        type=_concurrency,
        action="append",
        default=[],
        metavar="QUEUE=N[,QUEUE=N]",
        help="override queue concurrency (default from WORKER_CONCURRENCY, then built-in)",
    )
    worker.add_argument(
        "--no-scheduler",
        action="store_true",
        help="do not run the periodic scheduler in this process (default from WORKER_SCHEDULER)",
    )
    for option, metavar, when in (
        ("--max-jobs", "N", "after it ran N jobs (default from WORKER_MAX_JOBS; off)"),
        ("--max-memory", "MB", "once a job leaves it over MB MiB resident (default from "
         "WORKER_MAX_MEMORY_MB; off)"),
    ):  # fmt: skip
        worker.add_argument(
            option,
            type=_positive(option),
            default=None,
            metavar=metavar,
            help=f"replace the process with a fresh one {when}",
        )
    worker.add_argument(
        "--http",
        type=dashboard.http_port,
        default=None,
        metavar="PORT",
        help="also serve the dashboard and /metrics on WORKER_DASHBOARD_HOST:PORT (0: any port)",
    )
    worker.add_argument(
        "--no-respawn",
        action="store_true",
        help="when a recycling limit is reached, exit 0 (for a supervisor to restart the "
        "process) instead of replacing it in place",
    )
    worker.set_defaults(handler=cmd_worker)


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    recycling.hold_stop_signals()  # a recycled process: a SIGTERM from now on stops it cleanly
    environ = dict(os.environ)  # what a recycled process starts again with
    if args.no_scheduler:
        settings = settings.model_copy(update={"scheduler": False})
    limits = {"max_jobs": args.max_jobs, "max_memory_mb": args.max_memory}
    settings = settings.model_copy(update={k: v for k, v in limits.items() if v is not None})
    overrides = dict(settings.concurrency)
    for item in args.concurrency:
        overrides.update(item)
    plan = WorkerPlan.build(settings, queues=args.queues or queues.ALL_QUEUES, overrides=overrides)
    plan = dataclasses.replace(plan, respawn_environ=None if args.no_respawn else environ)
    with runtime.database_url(settings) as url:
        state = _schema_state(url, settings.db_connect_timeout)
        if not state.at_head:
            raise CommandError(
                f"schema at {','.join(state.current) or 'empty'}, head is {state.head}: "
                "run `manage.py migrate` first"
            )
        try:
            with dashboard.serving(url, settings, args.http):  # a thread, stopped after the drain
                recycle = asyncio.run(serve(url, plan, settings))
        except WorkerStopped as exc:
            raise CommandError(f"{exc}; see the log above") from exc
        if recycle and plan.respawn_environ is not None:
            # still attached to the embedded server (same pid after exec): it keeps running
            recycling.respawn(plan.respawn_environ)  # returns only after a SIGTERM meanwhile
        elif recycle:
            logger.info(
                "recycled: exiting 0 for the supervisor to start a fresh process (--no-respawn)",
                extra={"action": "worker_recycle_exit"},
            )
    return 0


def _schema_state(url: str, connect_timeout: int) -> schema.SchemaState:
    """The schema's state, waiting up to ``connect_timeout`` seconds for a server that is
    starting or restarting (a worker started during a failover comes up with it)."""
    deadline = time.monotonic() + connect_timeout
    while True:
        try:
            with reaching(url):
                engine = schema.engine_for(url, connect_timeout=connect_timeout)
                try:
                    return schema.state(engine)
                finally:
                    engine.dispose()
        except CommandError as exc:
            if time.monotonic() >= deadline or not _server_not_ready(exc):
                raise
            time.sleep(0.5)


def _server_not_ready(exc: BaseException) -> bool:
    """Whether the server refused us only because it is not up (yet): no answer at all, or
    "starting up" / "shutting down"; a wrong password or database is final at once."""
    cause = exc.__cause__
    original = getattr(cause, "orig", None) or cause
    if not isinstance(original, psycopg.OperationalError):
        return False
    return original.sqlstate in (None, "57P01", "57P03")


def _queue_list(value: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in value.split(",") if name.strip())
    unknown = [name for name in names if name not in queues.ALL_QUEUES]
    if not names or unknown:
        raise argparse.ArgumentTypeError(
            f"unknown queue(s) {', '.join(unknown) or repr(value)}; "
            f"known: {', '.join(queues.ALL_QUEUES)}"
        )
    return names


def _positive(option: str) -> Callable[[str], int]:
    def parse(value: str) -> int:
        if not value.strip().isdigit() or int(value) < 1:
            raise argparse.ArgumentTypeError(f"{option} expects a whole number >= 1, got {value!r}")
        return int(value)

    return parse


def _concurrency(value: str) -> dict[str, int]:
    try:
        return parse_concurrency(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
