"""``manage.py worker``: every queue (or ``--queues``) served by one process."""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

import psycopg

from worker import queues, runtime, schema
from worker.cli.errors import CommandError, reaching
from worker.config import Settings, parse_concurrency
from worker.server import WorkerPlan, WorkerStopped, serve


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
    worker.set_defaults(handler=cmd_worker)


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    if args.no_scheduler:
        settings = settings.model_copy(update={"scheduler": False})
    overrides = dict(settings.concurrency)
    for item in args.concurrency:
        overrides.update(item)
    plan = WorkerPlan.build(settings, queues=args.queues or queues.ALL_QUEUES, overrides=overrides)
    with runtime.database_url(settings) as url:
        state = _schema_state(url, settings.db_connect_timeout)
        if not state.at_head:
            raise CommandError(
                f"schema at {','.join(state.current) or 'empty'}, head is {state.head}: "
                "run `manage.py migrate` first"
            )
        try:
            asyncio.run(serve(url, plan, settings))
        except WorkerStopped as exc:
            raise CommandError(f"{exc}; see the log above") from exc
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


def _concurrency(value: str) -> dict[str, int]:
    try:
        return parse_concurrency(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
