"""``manage.py dashboard``: the web dashboard and ``/metrics``, served until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import contextlib
import signal
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from worker import runtime, schema
from worker.cli.errors import CommandError, reaching
from worker.config import Settings

if TYPE_CHECKING:
    from worker.dashboard.serving import DashboardServer


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
        type=http_port,
        default=None,
        help="port (default WORKER_DASHBOARD_PORT, 8800; 0: any free port)",
    )
    dashboard.set_defaults(handler=cmd_dashboard)


def cmd_dashboard(args: argparse.Namespace, settings: Settings) -> int:
    host = args.host or settings.dashboard_host
    port = settings.dashboard_port if args.port is None else args.port
    with runtime.database_url(settings) as url, reaching(url):
        _check_schema(url, settings)
        runtime.setup(url, pool_size=2, settings=settings, open_sync_pool=False)
        try:
            with serving(url, settings, port, host=host) as server:
                assert server is not None
                for sig in (signal.SIGINT, signal.SIGTERM):
                    signal.signal(sig, lambda *_: server.stop())
                actions = "need WORKER_DASHBOARD_TOKEN" if settings.dashboard_token else "disabled"
                print(f"dashboard on {server.url} (actions {actions})", flush=True)
                server.wait()
        finally:
            runtime.teardown()
    return 0


@contextlib.contextmanager
def serving(
    database_url: str, settings: Settings, port: int | None, *, host: str | None = None
) -> Iterator[DashboardServer | None]:
    """Serve the dashboard on ``host:port`` (default ``WORKER_DASHBOARD_HOST``) in a thread
    while the block runs; nothing when ``port`` is ``None`` (``manage.py worker`` without
    ``--http``).

    Raises
    ------
    CommandError
        The address cannot be listened on.
    """
    if port is None:
        yield None
        return
    from worker.dashboard.app import create_app
    from worker.dashboard.serving import DashboardServer

    host = host or settings.dashboard_host
    app = create_app(database_url, settings)
    try:
        server = DashboardServer(app, host=host, port=port)
    except OSError as exc:
        app.config["store"].close()
        raise CommandError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    server.start()
    try:
        yield server
    finally:
        server.stop()
        app.config["store"].close()


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


def http_port(value: str) -> int:
    """A port number from the command line (0: any free port)."""
    if not value.isdigit() or not 0 <= int(value) <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number 0..65535, got {value!r}")
    return int(value)
