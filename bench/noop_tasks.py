"""The benchmark's tasks: no-op and one-row for `manage.py worker`, no-op for bare procrastinate."""

from __future__ import annotations

import procrastinate
import sqlalchemy as sa

from worker import queues
from worker.jobs import NO_RETRY, current_job, task
from worker.jobs.uow import UnitOfWork

BARE_QUEUE = "bare"

#: The table the one-row tasks write to; the benchmark creates it at setup.
BENCH_ROWS_DDL = (
    "CREATE TABLE IF NOT EXISTS bench_rows ("
    "id bigserial PRIMARY KEY, job_id bigint, at timestamptz DEFAULT now())"
)


@task(name="bench.noop", queue=queues.DEFAULT, retry=NO_RETRY)
def noop() -> None:
    """Does nothing; its outcome is still recorded."""


@task(name="bench.one_row", queue=queues.DEFAULT, retry=NO_RETRY)
def one_row(*, uow: UnitOfWork) -> None:
    """Inserts one row, committed in the job's transaction together with its end."""
    uow.session.execute(
        sa.text("INSERT INTO bench_rows (job_id) VALUES (:job_id)"), {"job_id": current_job().id}
    )


def bare_app(conninfo: str) -> procrastinate.App:
    """A plain procrastinate App with a plain no-op task: the peer we compare against."""
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=conninfo))

    @app.task(name="bench.bare_noop", queue=BARE_QUEUE)
    def bare_noop() -> None:
        return None

    return app
