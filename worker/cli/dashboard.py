"""``manage.py dashboard``: the web dashboard and ``/metrics``, served until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import signal
from typing import Any

from worker import runtime, schema
from worker.cli.errors import CommandError, reaching
from worker.config import Settings


def add_commands(commands: Any) -> None:
    dashboard = commands.add_parser(
        "dashboard", help="serve the web dashboard and /metrics (127.0.0.1:8800 by default)"
    )
    dashboard.add_argument(
        "--host",
        default=None,
        help="address to listen on (default WORKER_DASHBOARD_HOST, 127.0.0.1: this machine only)",
    )
    dashboard.add_argument(
        "--port",
        type=_port,
        default=None,
        help="port (default WORKER_DASHBOARD_PORT, 8800; 0: any free port)",
    )
    dashboard.set_defaults(handler=cmd_dashboard)


def cmd_dashboard(args: argparse.Namespace, settings: Settings) -> int:
    from worker.dashboard.app import create_app
    from worker.dashboard.serving import DashboardServer

    host = args.host or settings.dashboard_host
    port = settings.dashboard_port if args.port is None else args.port
    with runtime.database_url(settings) as url, reaching(url):
        _check_schema(url, settings)
        runtime.setup(url, pool_size=2, settings=settings, open_sync_pool=False)
        app = create_app(url, settings)
        try:
            server = DashboardServer(app, host=host, port=port)
        except OSError as exc:
            raise CommandError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: server.stop())
        server.start()
        print(f"dashboard on {server.url} (actions "
              f"{'need WORKER_DASHBOARD_TOKEN' if settings.dashboard_token else 'disabled'})",
              flush=True)  # fmt: skip
        try:
            server.wait()
        finally:
            app.config["store"].close()
            runtime.teardown()
    return 0


def _check_schema(url: str, settings: Settings) -> None:
    engine = schema.engine_for(url, connect_timeout=settings.db_connect_timeout)
    try:
        state = schema.state(engine)
    finally:
        engine.dispose()
    if not state.at_head:
        raise CommandError(
            f"schema at {','.join(state.current) or 'empty'}, head is {state.head}: "
            "run `manage.py migrate` first"
        )


def _port(value: str) -> int:
    if not value.isdigit() or not 0 <= int(value) <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number 0..65535, got {value!r}")
    return int(value)
