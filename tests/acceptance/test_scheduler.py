"""The in-worker scheduler across real ``manage.py worker`` processes: one firing per tick,
takeover after a SIGKILL or a graceful stop, missed ticks coalesced, and the plugin check caught
up when a worker starts."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from pytest_httpserver import HTTPServer

from tests import factories, sample_tasks
from tests.acceptance.workers import WorkerProcess, wait_until
from tests.plugin_fakes import API_KEY, FakePluginServices, entry
from tests.restartable_postgres import RestartablePostgres, restartable_postgres
from worker import db, runtime
from worker.domain.models import TenantPluginAutoUpgradeStrategy
from worker.jobs import STARTED
from worker.maintenance import status
from worker.tasks import check_upgradable_plugin_task

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

SWEEP = "recover_stuck_documents"
SWEEP_TASK = "indexing.recover_stuck_documents"
#: A one-second test schedule; the plugin check off unless a test wants it.
ONE_SECOND = {"WORKER_SWEEP_INTERVAL": "1", "ENABLE_CHECK_UPGRADABLE_PLUGIN_TASK": "false"}
#: The issue's bound on a takeover.
TAKEOVER_WITHIN = 5.0


@pytest.fixture(autouse=True)
def task_layer(database_url: str) -> Iterator[None]:
    runtime.setup(database_url)
    yield
    runtime.teardown()


@pytest.fixture
def workers() -> Iterator[list[WorkerProcess]]:
    started: list[WorkerProcess] = []
    yield started
    for process in started:
        process.close()


def rows(statement: str, **params: object) -> list[sa.Row[tuple[object, ...]]]:
    with db.session_scope(new=True) as session:
        return list(session.execute(sa.text(statement), params).all())


def ticks_of(name: str) -> list[sa.Row[tuple[object, ...]]]:
    return rows(
        "SELECT tick_at, outcome, procrastinate_job_id AS job_id,"
        " CAST(extract(epoch FROM fired_at) AS float) AS fired FROM scheduler_ticks"
        " WHERE job_name = :name ORDER BY tick_at",
        name=name,
    )


def leader_pid() -> int | None:
    with db.session_scope(new=True) as session:
        found = status.leader(session)
    return None if found is None else found.pid


def assert_one_firing_per_tick(name: str, task_name: str) -> list[sa.Row[tuple[object, ...]]]:
    seen = ticks_of(name)
    times = [row.tick_at for row in seen]
    assert times == [times[0] + timedelta(seconds=n) for n in range(len(times))], "no tick lost"
    deferred = sorted(row.job_id for row in seen if row.outcome == "deferred")
    jobs = [row.id for row in rows("SELECT id FROM procrastinate_jobs WHERE task_name = :t ORDER "
                                   "BY id", t=task_name)]  # fmt: skip
    assert deferred == jobs, "exactly one job per tick that deferred one, and no other"
    return seen


def test_three_workers_fire_each_tick_once_and_a_standby_takes_over_a_killed_leader(
    database_url: str, workers: list[WorkerProcess]
) -> None:
    workers.extend(
        WorkerProcess(database_url, "--queues", "dataset", env=ONE_SECOND) for _ in range(3)
    )
    wait_until(lambda: len(ticks_of(SWEEP)) >= 6, timeout=30, message="no ticks")

    # the leader is SIGKILLed: a standby fires the next tick
    leader = leading(workers)
    killed_at = kill(leader)
    wait_until(lambda: fired_since(killed_at), timeout=15, message="no standby took over")
    takeover = min(row.fired for row in fired_since(killed_at)) - killed_at
    print(f"takeover after SIGKILL of the leader: {takeover:.2f} s")
    assert takeover < TAKEOVER_WITHIN
    survivors = [w for w in workers if w is not leader]

    # no process can lead for 3 s (the standby is frozen, the leader killed): those ticks are
    # missed, and coalesced into one job when the standby comes back and leads
    leader = leading(survivors)
    standby = next(w for w in survivors if w is not leader)
    last_before = ticks_of(SWEEP)[-1].tick_at
    standby.process.send_signal(signal.SIGSTOP)
    killed_at = kill(leader)
    time.sleep(3)
    standby.process.send_signal(signal.SIGCONT)
    wait_until(lambda: fired_since(killed_at), timeout=15, message="the standby did not lead")
    time.sleep(2)
    assert standby.stop() == 0

    seen = assert_one_firing_per_tick(SWEEP, SWEEP_TASK)
    gap = [row for row in seen if row.tick_at > last_before]
    first_fired = next(i for i, row in enumerate(gap) if row.outcome != "coalesced")
    print(f"ticks missed while no process led, coalesced into one: {first_fired}")
    assert first_fired >= 2
    assert gap[first_fired].outcome in ("deferred", "already_queued")
    assert gap[first_fired].fired == gap[first_fired - 1].fired, "recorded by the same firing"
    assert {row.outcome for row in seen} <= {"deferred", "already_queued", "coalesced"}


def leading(workers: list[WorkerProcess]) -> WorkerProcess:
    wait_until(lambda: leader_pid() in [w.process.pid for w in workers], timeout=10)
    return next(w for w in workers if w.process.pid == leader_pid())


def kill(process: WorkerProcess) -> float:
    process.kill()
    return time.time()


def fired_since(moment: float) -> list[sa.Row[tuple[object, ...]]]:
    return [row for row in ticks_of(SWEEP) if row.fired > moment]


def test_a_stopping_leader_hands_over_before_it_drains(
    database_url: str, workers: list[WorkerProcess]
) -> None:
    first = WorkerProcess(database_url, "--queues", "dataset", env=ONE_SECOND)
    workers.append(first)
    first.wait_for_log("became the scheduler leader")
    slow = sample_tasks.slow_tenant.delay("draining", seconds=8.0)
    wait_until(lambda: slow.status == STARTED, message="the slow job never started")
    second = WorkerProcess(database_url, "--queues", "dataset", env=ONE_SECOND)
    workers.append(second)
    time.sleep(1.5)
    assert "became the scheduler leader" not in second.output()

    first.process.send_signal(signal.SIGTERM)
    second.wait_for_log("became the scheduler leader", timeout=5)
    assert first.process.poll() is None, "the new leader leads while the old one still drains"
    assert first.process.wait(timeout=30) == 0

    log = first.output()
    assert log.index("scheduler leadership released") < log.index("draining running jobs")
    assert slow.get(timeout=5) == "draining"
    assert second.stop() == 0
    assert_one_firing_per_tick(SWEEP, SWEEP_TASK)


def test_a_worker_without_scheduler_never_fires(
    database_url: str, workers: list[WorkerProcess]
) -> None:
    workers.append(
        WorkerProcess(database_url, "--queues", "dataset", "--no-scheduler", env=ONE_SECOND)
    )
    workers.append(
        WorkerProcess(database_url, "--queues", "dataset", env={**ONE_SECOND,
                                                                "WORKER_SCHEDULER": "false"})
    )  # fmt: skip
    time.sleep(2.5)

    assert ticks_of(SWEEP) == []
    assert leader_pid() is None
    for process in workers:
        assert "scheduler started" not in process.output()
        assert process.stop() == 0


def test_the_plugin_check_missed_while_no_worker_ran_is_caught_up_once(
    database_url: str, workers: list[WorkerProcess], httpserver: HTTPServer
) -> None:
    fake = FakePluginServices(httpserver)
    now = datetime.now(UTC)
    due_at = now - timedelta(hours=1)
    with db.session_scope() as session:
        tenant_id = str(factories.make_tenant(session).id)
        session.add(
            TenantPluginAutoUpgradeStrategy(
                tenant_id=tenant_id,
                upgrade_time_of_day=due_at.hour * 3600 + due_at.minute * 60,
                created_at=now - timedelta(days=10),
                last_checked_at=now - timedelta(days=1, hours=2),  # yesterday's check
            )
        )
        # the fleet last fired the quarter-hour check three hours ago, then went down
        quarter = now.replace(minute=now.minute // 15 * 15, second=0, microsecond=0)
        session.execute(
            sa.text(
                "INSERT INTO scheduler_ticks (job_name, tick_at, outcome) "
                "VALUES ('check_upgradable_plugin_task', :at, 'deferred')"
            ),
            {"at": quarter - timedelta(hours=3)},
        )
    fake.install(tenant_id, entry("langgenius/openai", "0.1.2"))
    fake.release("langgenius/openai", "0.1.3", known=False)

    workers.append(
        WorkerProcess(
            database_url, "--queues", "plugin",
            env={"PLUGIN_DAEMON_URL": fake.daemon_url, "PLUGIN_DAEMON_KEY": API_KEY,
                 "MARKETPLACE_API_URL": fake.marketplace_url},
        )
    )  # fmt: skip
    wait_until(
        lambda: [call[2] for call in fake.calls("market")][-1:] == ["install_count"],
        timeout=30,
        message="the workspace was not upgraded",
    )

    check_ticks = ticks_of("check_upgradable_plugin_task")
    assert [row.outcome for row in check_ticks[1:-1]] == ["coalesced"] * (len(check_ticks) - 2)
    assert check_ticks[-1].outcome == "deferred"
    assert len(check_ticks) >= 12, "three hours of quarter hours"
    assert [c[2] for c in fake.requests] == [
        "list", "batch", "manifest", "download", "upload", "upgrade", "install_count"
    ]  # fmt: skip

    # the next tick's check finds the workspace checked today
    assert check_upgradable_plugin_task.delay().get(timeout=30) == []
    tenant_jobs = rows(
        "SELECT status FROM procrastinate_jobs "
        "WHERE task_name = 'plugins.process_tenant_plugin_autoupgrade_check'"
    )
    assert [row.status for row in tenant_jobs] == ["succeeded"]
    assert workers[0].stop() == 0


@pytest.fixture
def restartable_url() -> Iterator[tuple[RestartablePostgres, str]]:
    runtime.teardown()
    with restartable_postgres() as server:
        url = server.create_database("scheduler")
        runtime.setup(url)
        yield server, url
        runtime.teardown()


def test_the_scheduler_rides_out_a_postgres_restart(
    restartable_url: tuple[RestartablePostgres, str], workers: list[WorkerProcess]
) -> None:
    server, url = restartable_url
    workers.extend(WorkerProcess(url, "--queues", "dataset", env=ONE_SECOND) for _ in range(2))
    wait_until(lambda: len(ticks_of(SWEEP)) >= 3, timeout=30, message="no ticks")

    server.restart_immediately()
    back = time.time()
    runtime.current().engine.dispose()  # this test process's pooled connections died too
    wait_until(lambda: fired_since(back), timeout=20, message="no tick after the restart")
    resumed = min(row.fired for row in fired_since(back)) - back
    time.sleep(2)
    for process in workers:
        assert process.process.poll() is None, f"a worker exited:\n{process.output()}"
        assert process.stop() == 0

    print(f"first tick fired {resumed:.2f} s after the server was back")
    assert resumed < TAKEOVER_WITHIN
    assert_one_firing_per_tick(SWEEP, SWEEP_TASK)
