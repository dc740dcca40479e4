"""No-op tasks for the throughput benchmark, one per worker under test."""

from __future__ import annotations

import procrastinate

from worker import queues
from worker.jobs import NO_RETRY, task

BARE_QUEUE = "bare"


@task(name="bench.noop", queue=queues.DEFAULT, retry=NO_RETRY)
def noop() -> None:
    """Does nothing; its outcome is still recorded with its (empty) transaction."""


def bare_app(conninfo: str) -> procrastinate.App:
    """A plain procrastinate App with a plain no-op task: the peer we compare against."""
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=conninfo))

    @app.task(name="bench.bare_noop", queue=BARE_QUEUE)
    def bare_noop() -> None:
        return None

    return app
