"""A worker's task thread keeps its database connection from one job to the next
(``db.keep_connections``): no pool checkout per job, a dead one replaced before a job uses it,
never shared by two units of work at once, given back when the worker stops."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
import sqlalchemy as sa

from worker import db, queues, runtime
from worker.domain.models import Tenant
from worker.jobs import NO_RETRY, SUCCESS, AsyncResult, task
from worker.jobs.runner import Runner, RunnerOptions
from worker.jobs.uow import UnitOfWork


@task(name="tests.kept.backend", queue=queues.DEFAULT, retry=NO_RETRY)
def backend(name: str, *, uow: UnitOfWork) -> int:
    """Writes a row; returns the server process its session talks to."""
    uow.session.add(Tenant(name=name))
    pid: int = uow.session.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
    return pid


@task(name="tests.kept.held_a_while", queue=queues.DEFAULT, retry=NO_RETRY)
def held_a_while(name: str, *, uow: UnitOfWork) -> None:
    """Writes a row and holds its connection 50 ms: every thread busy at once."""
    uow.session.add(Tenant(name=name))
    uow.session.flush()
    time.sleep(0.05)


@task(name="tests.kept.two_units", queue=queues.DEFAULT, retry=NO_RETRY)
def two_units(name: str, *, uow: UnitOfWork) -> None:
    """Commits a row in a unit of work of its own while the job's is open, then fails."""
    uow.session.add(Tenant(name=f"{name}-job"))
    outer = uow.session.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
    with UnitOfWork() as inner:
        inner.session.add(Tenant(name=f"{name}-inner"))
        inner_pid = inner.session.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
        inner.checkpoint()
    assert inner_pid != outer, "two units of work at once on one connection"
    raise RuntimeError("the job fails after the inner unit of work committed")


@pytest.fixture(autouse=True)
def task_layer(database_url: str) -> Iterator[runtime.Runtime]:
    yield runtime.setup(database_url)
    db.give_back_kept_connections()
    runtime.teardown()


@pytest.fixture
def executor() -> Iterator[ThreadPoolExecutor]:
    """One task thread that keeps its connection, as ``manage.py worker``'s threads do."""
    with ThreadPoolExecutor(1, thread_name_prefix="task", initializer=db.keep_connections) as pool:
        yield pool


def run(executor: ThreadPoolExecutor, concurrency: int = 1) -> None:
    options = RunnerOptions(
        concurrency={queues.DEFAULT: concurrency}, heartbeat_interval=10, stalled_after=60,
        recovery_interval=15, max_lost_runs=3, listen=False, recover=False,
    )  # fmt: skip

    async def until_idle() -> None:
        await Runner(runtime.current().database_url, options, executor).run_until_idle()

    asyncio.run(until_idle())


def checkouts() -> list[str]:
    """A list that grows by the thread's name at each checkout from the task layer's pool."""
    seen: list[str] = []
    sa.event.listen(
        runtime.current().engine, "checkout",
        lambda *_: seen.append(threading.current_thread().name),
    )  # fmt: skip
    return seen


def tenants(name: str) -> int:
    with db.session_scope(new=True) as session:
        return session.execute(sa.select(sa.func.count()).where(Tenant.name == name)).scalar_one()


def test_a_task_thread_runs_its_jobs_on_one_connection(executor: ThreadPoolExecutor) -> None:
    first = backend.delay("first")
    run(executor)
    seen = checkouts()
    results = [backend.delay(f"job-{n}") for n in range(5)]

    run(executor)

    pids = {AsyncResult(result.id).get(timeout=1) for result in [first, *results]}
    assert len(pids) == 1, "every job on the connection the thread keeps"
    assert [name for name in seen if name.startswith("task")] == [], "no checkout for a job"
    assert [tenants(f"job-{n}") for n in range(5)] == [1] * 5


def test_a_kept_connection_the_server_closed_is_replaced_before_the_next_job(
    executor: ThreadPoolExecutor, database_url: str
) -> None:
    first = backend.delay("before")
    run(executor)
    killed = AsyncResult(first.id).get(timeout=1)
    with psycopg.connect(database_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (killed,))
        deadline = time.monotonic() + 10
        while admin.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (killed,)
        ).fetchone() != (0,):
            assert time.monotonic() < deadline, "the server process did not go"
            time.sleep(0.05)

    after = backend.delay("after")
    run(executor)

    # not interrupted and run again later: the job ran at once, on a new connection
    assert after.status == SUCCESS
    assert AsyncResult(after.id).get(timeout=1) != killed
    assert tenants("after") == 1


def test_a_second_unit_of_work_in_the_thread_gets_a_connection_of_its_own(
    executor: ThreadPoolExecutor,
) -> None:
    result = two_units.delay("both")

    run(executor)

    assert result.status == "FAILURE"
    assert "the inner unit of work committed" in str(result.result)
    assert (tenants("both-inner"), tenants("both-job")) == (1, 0)
    # and the thread's own connection still serves the next job
    after = backend.delay("next")
    run(executor)
    assert after.status == SUCCESS


def test_connections_kept_are_given_back_when_the_worker_stops(
    executor: ThreadPoolExecutor,
) -> None:
    backend.delay("one")
    run(executor)
    pool = runtime.current().engine.pool
    assert pool.checkedout() == 1, "the task thread keeps one"  # type: ignore[attr-defined]

    db.give_back_kept_connections()

    assert pool.checkedout() == 0  # type: ignore[attr-defined]


def test_threads_keep_no_more_than_the_pool_spares_and_the_others_still_run() -> None:
    pool = runtime.current().engine.pool  # 5 connections (and 2 more in overflow)
    names = [f"busy-{n}" for n in range(40)]
    for name in names:
        held_a_while.delay(name)

    with ThreadPoolExecutor(8, thread_name_prefix="task", initializer=db.keep_connections) as many:
        run(many, concurrency=8)

    assert [tenants(name) for name in names] == [1] * 40, "no job waited for a connection"
    assert pool.checkedout() == 4, "kept: the pool's size less one"  # type: ignore[attr-defined]
