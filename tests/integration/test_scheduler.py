"""The scheduler's firing, leadership and catch-up against a real database."""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy import orm

from tests import sample_tasks
from worker import db, runtime
from worker.domain import sql
from worker.domain.models import SchedulerTick, TickOutcome
from worker.maintenance import firing, ticks
from worker.maintenance.leader import Leadership
from worker.maintenance.schedule import PeriodicJob
from worker.maintenance.scheduler import Scheduler, SchedulerOptions
from worker.maintenance.ticks import Policy

T0 = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def task_layer(database_url: str) -> Iterator[None]:
    runtime.setup(database_url)
    yield
    runtime.teardown()


def periodic(policy: Policy = Policy.COALESCE, seconds: int = 60) -> PeriodicJob:
    return PeriodicJob(
        name="adder",
        task=sample_tasks.add,
        trigger=ticks.every(seconds),
        policy=policy,
        kwargs={"x": 1, "y": 2},
    )


def fire_at(now: datetime, job: PeriodicJob | None = None) -> firing.Firing:
    with db.session_scope(new=True) as session:
        return firing.fire(session, job or periodic(), now=now)


def recorded() -> list[tuple[datetime, str, int | None]]:
    with db.session_scope(new=True) as session:
        rows = session.execute(
            sa.select(SchedulerTick.tick_at, SchedulerTick.outcome,
                      SchedulerTick.procrastinate_job_id).order_by(SchedulerTick.tick_at)
        ).all()  # fmt: skip
    return [(row.tick_at, str(row.outcome), row.procrastinate_job_id) for row in rows]


def adder_jobs() -> list[int]:
    with db.session_scope(new=True) as session:
        return list(
            session.scalars(
                sa.text(
                    "SELECT id FROM procrastinate_jobs WHERE task_name = 'tests.add' ORDER BY id"
                )
            )
        )


def finish_jobs() -> None:
    with db.session_scope(new=True) as session:
        session.execute(sa.text("UPDATE procrastinate_jobs SET status = 'succeeded'"))


def test_a_tick_fires_once_whatever_the_number_of_schedulers(engine: sa.Engine) -> None:
    fire_at(T0 + timedelta(seconds=1))  # the job's first tick
    finish_jobs()
    now = T0 + timedelta(minutes=1, seconds=1)
    barrier = threading.Barrier(4)
    results: list[firing.Firing] = []

    def leader() -> None:
        with orm.Session(engine) as session, session.begin():
            barrier.wait()
            results.append(firing.fire(session, periodic(), now=now))

    threads = [threading.Thread(target=leader) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(r.outcome is TickOutcome.DEFERRED for r in results) == [False] * 3 + [True]
    assert len(adder_jobs()) == 2
    assert [(tick, outcome) for tick, outcome, _ in recorded()] == [
        (T0, "deferred"),
        (T0 + timedelta(minutes=1), "deferred"),
    ]


def test_a_rolled_back_firing_leaves_neither_tick_nor_job() -> None:
    session = db.new_session()
    with session.begin():
        firing.fire(session, periodic(), now=T0 + timedelta(seconds=1))
        session.rollback()

    assert recorded() == []
    assert adder_jobs() == []


def test_missed_ticks_are_coalesced_into_one_job() -> None:
    fire_at(T0 + timedelta(seconds=1))
    finish_jobs()

    done = fire_at(T0 + timedelta(minutes=5, seconds=20))

    assert done.tick_at == T0 + timedelta(minutes=5) and done.missed == 4
    assert [outcome for _, outcome, _ in recorded()] == ["deferred"] + ["coalesced"] * 4 + [
        "deferred"
    ]
    assert recorded()[-1][2] == adder_jobs()[-1]
    assert len(adder_jobs()) == 2


def test_skipped_ticks_defer_nothing() -> None:
    job = periodic(Policy.SKIP)
    fire_at(T0 + timedelta(seconds=1), job)
    finish_jobs()

    done = fire_at(T0 + timedelta(minutes=5, seconds=20), job)

    assert done.tick_at is None and done.missed == 5
    assert [outcome for _, outcome, _ in recorded()] == ["deferred"] + ["skipped"] * 5
    assert len(adder_jobs()) == 1


def test_a_tick_whose_previous_job_still_waits_defers_nothing() -> None:
    fire_at(T0 + timedelta(seconds=1))

    done = fire_at(T0 + timedelta(minutes=1, seconds=1))

    assert done.outcome is TickOutcome.ALREADY_QUEUED and done.job_id is None
    assert [outcome for _, outcome, _ in recorded()] == ["deferred", "already_queued"]
    assert len(adder_jobs()) == 1


async def test_one_leadership_at_a_time(database_url: str) -> None:
    first, second = (Leadership(db.libpq_url(database_url), name=n) for n in ("one", "two"))
    try:
        assert await first.acquire()
        assert not await second.acquire()
        assert await first.confirm()
        assert leader_name() == "one"

        await first.release()
        assert await second.acquire()
        assert leader_name() == "two"
    finally:
        await first.release()
        await second.release()


async def test_a_leader_whose_connection_dies_knows_it(database_url: str) -> None:
    leadership = Leadership(db.libpq_url(database_url), name="doomed")
    other = Leadership(db.libpq_url(database_url), name="other")
    try:
        assert await leadership.acquire()
        with psycopg.connect(db.libpq_url(database_url), autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
                "WHERE application_name = 'doomed'"
            )

        assert not await leadership.confirm()
        assert await other.acquire(), "the lock went with the session"
        assert not await leadership.acquire(), "it reconnects, and finds the lock taken"
    finally:
        await leadership.release()
        await other.release()


def leader_name() -> str | None:
    with db.session_scope(new=True) as session:
        row = session.execute(sa.text(sql.queries()["scheduler_leader"])).first()
    return None if row is None else str(row.application_name)


async def test_two_schedulers_fire_each_tick_once(database_url: str) -> None:
    options = SchedulerOptions(election_interval=0.2)
    schedulers = [Scheduler(database_url, [periodic(seconds=1)], options) for _ in range(2)]
    for scheduler in schedulers:
        scheduler.start()
    try:
        await asyncio.sleep(3.6)
        assert sum(s.leading for s in schedulers) == 1
        leader = next(s for s in schedulers if s.leading)
        await leader.stop()
        await asyncio.sleep(2.2)
        assert [s.leading for s in schedulers if s is not leader] == [True]
    finally:
        for scheduler in schedulers:
            await scheduler.stop()

    ticks_seen = recorded()
    times = [tick for tick, _, _ in ticks_seen]
    assert len(times) >= 4
    assert times == [times[0] + timedelta(seconds=n) for n in range(len(times))], "no gap"
    assert {outcome for _, outcome, _ in ticks_seen} <= {"deferred", "already_queued", "coalesced"}
    deferred = [job for _, outcome, job in ticks_seen if outcome == "deferred"]
    assert sorted(deferred) == adder_jobs(), "one job per deferred tick, none other"


async def test_a_stop_that_leaves_a_blocked_firing_logs_no_error(
    database_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr("worker.maintenance.scheduler.STOP_TIMEOUT", 0.5)
    scheduler = Scheduler(
        database_url, [periodic(seconds=1)], SchedulerOptions(election_interval=0.2)
    )
    loop = asyncio.get_running_loop()
    blocker = psycopg.connect(database_url)
    try:
        scheduler.start()
        deadline = loop.time() + 10
        while not recorded():  # the leader's catch-up firing went through
            assert loop.time() < deadline, "the scheduler never fired"
            await asyncio.sleep(0.05)
        caught_up = scheduler._in_flight
        # the next tick's firing waits for the ticks table, which another session holds
        blocker.execute("LOCK TABLE scheduler_ticks IN ACCESS EXCLUSIVE MODE")
        while scheduler._in_flight is caught_up or scheduler._in_flight is None:
            assert loop.time() < deadline, "no tick fired"
            await asyncio.sleep(0.05)
        await scheduler.stop()
        await asyncio.sleep(0.2)  # the timers' shutdown cancels the tick's coroutine
    finally:
        blocker.rollback()
        blocker.close()
    actions = [getattr(record, "action", None) for record in caplog.records]
    assert "scheduler_stop_timeout" in actions
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]
    # the firing left behind commits once the table is free: its tick is recorded once
    deadline = loop.time() + 10
    while len(recorded()) < 2:
        assert loop.time() < deadline, "the firing left behind never committed"
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)
    ticks_seen = [tick for tick, _, _ in recorded()]
    assert len(ticks_seen) == len(set(ticks_seen)) == 2
    gc.collect()  # a connection of the firing left behind, dropped unclosed, would warn here
