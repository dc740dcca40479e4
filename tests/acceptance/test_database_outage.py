"""A worker rides out a PostgreSQL restart: it neither exits nor spins, takes jobs again within
seconds of the server being back, and a run broken by the restart costs no retry."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from tests import sample_tasks
from tests.acceptance.workers import WorkerProcess, tenants, wait_until
from tests.restartable_postgres import RestartablePostgres, restartable_postgres
from worker import db, runtime
from worker.jobs import STARTED, SUCCESS

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

#: The issue's bound: every surviving worker takes jobs again within this many seconds.
RESUME_WITHIN = 10.0


@pytest.fixture
def server() -> Iterator[RestartablePostgres]:
    with restartable_postgres() as started:
        yield started


@pytest.fixture
def url(server: RestartablePostgres) -> Iterator[str]:
    database_url = server.create_database("outage")
    runtime.setup(database_url)
    yield database_url
    runtime.teardown()


def run_of(job_id: int) -> sa.Row[tuple[str, int, int, int, float]]:
    with db.session_scope(new=True) as session:
        return session.execute(
            sa.text(
                "SELECT status, attempts, lost_runs, interrupted_runs, "
                "CAST(extract(epoch FROM run_started_at) AS float) AS started "
                "FROM procrastinate_jobs WHERE id = :id"
            ),
            {"id": job_id},
        ).one()


def test_workers_ride_out_a_postgres_restart(server: RestartablePostgres, url: str) -> None:
    # a restart takes a second or more: with the tests' 2 s stall limit a loaded machine could
    # take a live worker for dead (which costs no retry either, but is not what this tests)
    timings = {"WORKER_HEARTBEAT_INTERVAL": "0.5", "WORKER_STALLED_AFTER": "6"}
    workers = [WorkerProcess(url, "--queues", "dataset,default", env=timings) for _ in range(2)]
    try:
        assert sample_tasks.create_tenant.delay("before").get(timeout=30)
        # runs during the restart, then writes on a connection the restart broke; no retry=
        crossing = sample_tasks.slow_tenant.delay("crossing", seconds=3.0)
        wait_until(lambda: crossing.status == STARTED, message="the slow job never started")

        server.restart_immediately()
        back = time.time()
        runtime.current().engine.dispose()  # this test process's pooled connections died too
        after = [sample_tasks.create_tenant.delay(f"after-{n}") for n in range(20)]

        assert crossing.get(timeout=60) == "crossing", "a broken connection costs no retry"
        assert [job.get(timeout=60) is not None for job in after] == [True] * 20
        assert tenants("crossing") == 1
        assert sum(tenants(f"after-{n}") for n in range(20)) == 20
        first_start = min(run_of(job.id).started for job in after)
        print(f"first job after the restart started {first_start - back:.2f} s after it")
        assert first_start - back < RESUME_WITHIN, "fetching resumed within 10 s"
        status, attempts, lost, _, _ = run_of(crossing.id)
        assert (status, attempts, lost) == ("succeeded", 1, 0)
        for process in workers:
            assert process.process.poll() is None, f"a worker exited:\n{process.output()}"
        for process in workers:
            assert "database reachable again" in process.output()

        for process in workers:
            process.wait_for_log("listening for new jobs again", timeout=10)
        woken = sample_tasks.create_tenant.delay("woken")
        assert woken.get(timeout=30)
        assert woken.status == SUCCESS
        for process in workers:
            assert process.stop() == 0
    finally:
        for process in workers:
            process.close()
