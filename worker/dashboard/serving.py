"""Serving the dashboard with waitress, in a thread of its own.

waitress is a pure-Python, production-grade WSGI server with no dependency: a few threads answer
requests (each page is a short read-only transaction), and it stops cleanly from another
thread, which is what a worker process needs to serve the pages beside its job loops.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from waitress import wasyncore
from waitress.server import create_server

from worker.dashboard.metrics import FoldLoop

logger = logging.getLogger(__name__)

#: Threads answering requests.
THREADS = 4


class DashboardServer:
    """A waitress server on ``host:port`` (port 0: any free port) running in a thread."""

    def __init__(self, app: Any, *, host: str, port: int) -> None:
        self._folding = FoldLoop(app.config["store"])
        self._server: Any = create_server(
            app, host=host, port=port, threads=THREADS, ident="pg-task-layer",
            clear_untrusted_proxy_headers=True,
        )  # fmt: skip
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="dashboard", daemon=True)
        self.host = host

    @property
    def port(self) -> int:
        """The port it listens on (the one chosen when 0 was asked)."""
        port: int = self._server.socket.getsockname()[1]
        return port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    def start(self) -> None:
        """Serve in the background."""
        self._thread.start()
        self._folding.start()
        logger.info("dashboard listening on %s", self.url, extra={"action": "dashboard_start"})

    def _serve(self) -> None:
        # waitress's own loop, one poll at a time, so that this thread alone closes the sockets
        server_map = self._server._map
        try:
            while not self._stopping.is_set():
                wasyncore.loop(timeout=1.0, map=server_map, count=1)
        finally:
            self._server.task_dispatcher.shutdown()
            wasyncore.close_all(server_map)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop listening, let requests in progress end, and wait for the serving thread."""
        self._folding.stop()
        self._stopping.set()
        self._server.pull_trigger()  # wakes the poll at once
        self._thread.join(timeout)
        logger.info("dashboard stopped", extra={"action": "dashboard_stop"})

    def wait(self) -> None:
        """Block until the server stops (``stop`` from another thread or a signal handler)."""
        while self._thread.is_alive():
            self._thread.join(0.5)
