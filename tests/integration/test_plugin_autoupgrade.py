"""Plugin auto-upgrade over real HTTP, against a fake daemon and a fake marketplace."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from pytest_httpserver import HTTPServer

from tests import factories, inprocess
from tests.plugin_fakes import API_KEY, FakePluginServices, entry, uid
from tests.uow import run
from worker import db, runtime
from worker.config import Settings
from worker.domain.errors import TransientError
from worker.domain.models import (
    AutoUpgradeMode,
    AutoUpgradeStrategySetting,
    TenantPluginAutoUpgradeStrategy,
)
from worker.domain.plugins import autoupgrade
from worker.domain.plugins.daemon import PluginDaemon
from worker.domain.plugins.marketplace import Marketplace
from worker.jobs import SUCCESS
from worker.tasks import check_upgradable_plugin_task, process_tenant_plugin_autoupgrade_check_task

OPENAI, TONGYI, TOOL = "langgenius/openai", "langgenius/tongyi", "acme/tool"


@pytest.fixture
def fake(httpserver: HTTPServer) -> FakePluginServices:
    return FakePluginServices(httpserver)


@pytest.fixture(autouse=True)
def task_layer(database_url: str, fake: FakePluginServices) -> Iterator[None]:
    settings = Settings(
        plugin_daemon_url=fake.daemon_url,
        plugin_daemon_key=API_KEY,
        marketplace_api_url=fake.marketplace_url,
        http_timeout=5,
    )
    runtime.setup(database_url, settings=settings)
    yield
    runtime.teardown()


@pytest.fixture
def tenant_id() -> str:
    with db.session_scope() as session:
        return str(factories.make_tenant(session).id)


def check(
    fake: FakePluginServices,
    tenant_id: str,
    setting: AutoUpgradeStrategySetting = AutoUpgradeStrategySetting.FIX_ONLY,
    mode: AutoUpgradeMode = AutoUpgradeMode.ALL,
    **lists: tuple[str, ...],
) -> dict[str, dict[str, Any]]:
    strategy = autoupgrade.Strategy(tenant_id=tenant_id, setting=setting, mode=mode, **lists)
    with (
        PluginDaemon(fake.daemon_url, API_KEY, timeout=5) as daemon,
        Marketplace(fake.marketplace_url, timeout=5, max_package_size=1024) as market,
    ):
        outcomes = run(autoupgrade.check_tenant, daemon, market, strategy)
    return {outcome["plugin_id"]: outcome for outcome in outcomes}


def installs(fake: FakePluginServices, tenant_id: str) -> None:
    fake.install(tenant_id, entry(OPENAI, "0.1.2"), entry(TONGYI, "0.1.2"))
    fake.install(tenant_id, entry(TOOL, "0.1.0", source="github"))


def test_fix_only_upgrades_a_patch_and_not_a_minor(
    fake: FakePluginServices, tenant_id: str
) -> None:
    installs(fake, tenant_id)
    patch = fake.release(OPENAI, "0.1.3")
    fake.release(TONGYI, "0.2.0")
    fake.release(TOOL, "0.2.0")

    outcomes = check(fake, tenant_id)

    assert fake.requests == [
        ("daemon", "GET", "list", "1"),
        ("market", "POST", "batch", [OPENAI, TONGYI]),  # the github plugin is not a candidate
        ("daemon", "GET", "manifest", patch),
        ("daemon", "POST", "upgrade", uid(OPENAI, "0.1.2"), patch),
        ("market", "POST", "install_count", patch),
    ]
    assert outcomes[OPENAI] == {
        "plugin_id": OPENAI, "from": "0.1.2", "to": "0.1.3", "action": "upgraded",
        "reason": "fix_only: 0.1.2 -> 0.1.3", "daemon_task_id": "task-4",
    }  # fmt: skip
    assert outcomes[TONGYI]["action"] == "skipped"
    assert "not a patch release" in outcomes[TONGYI]["reason"]
    assert TOOL not in outcomes


def test_latest_never_downgrades(fake: FakePluginServices, tenant_id: str) -> None:
    fake.install(tenant_id, entry(OPENAI, "1.2.0"), entry(TONGYI, "0.1.9"))
    fake.release(OPENAI, "1.1.9")
    newer = fake.release(TONGYI, "0.1.10")  # greater numerically, smaller as text

    outcomes = check(fake, tenant_id, AutoUpgradeStrategySetting.LATEST)

    assert outcomes[OPENAI]["action"] == "skipped"
    assert "lower" in outcomes[OPENAI]["reason"]
    assert [call for call in fake.requests if call[2] == "upgrade"] == [
        ("daemon", "POST", "upgrade", uid(TONGYI, "0.1.9"), newer)
    ]


def test_a_package_unknown_to_the_daemon_is_downloaded_and_uploaded_first(
    fake: FakePluginServices, tenant_id: str
) -> None:
    fake.install(tenant_id, entry(OPENAI, "0.1.2"))
    new = fake.release(OPENAI, "0.1.3", known=False)

    outcomes = check(fake, tenant_id)

    assert fake.requests[2:] == [
        ("daemon", "GET", "manifest", new),
        ("market", "GET", "download", new),
        ("daemon", "POST", "upload", new, "false"),
        ("daemon", "POST", "upgrade", uid(OPENAI, "0.1.2"), new),
        ("market", "POST", "install_count", new),
    ]
    assert outcomes[OPENAI]["action"] == "upgraded"


def test_a_marketplace_failure_retries_the_workspace_and_upgrades_once(
    fake: FakePluginServices, tenant_id: str
) -> None:
    installs(fake, tenant_id)
    fake.release(OPENAI, "0.1.3")
    fake.batch_failures = 1
    job = process_tenant_plugin_autoupgrade_check_task.delay(
        tenant_id, "fix_only", 0, "all", [], []
    )

    inprocess.drain()
    assert job.status == "RETRY", "HTTP 503 from the marketplace is transient"
    with db.session_scope(new=True) as session:  # its retry is due now
        session.execute(sa.text("UPDATE procrastinate_jobs SET scheduled_at = now()"))
    inprocess.drain()

    assert job.status == SUCCESS
    assert {o["plugin_id"]: o["action"] for o in job.get(timeout=5)} == {
        OPENAI: "upgraded",
        TONGYI: "skipped",
    }
    assert [call[2] for call in fake.calls("market")] == ["batch", "batch", "install_count"]
    assert len([call for call in fake.requests if call[2] == "upgrade"]) == 1


def test_an_unreachable_daemon_is_transient(tenant_id: str) -> None:
    strategy = autoupgrade.Strategy(
        tenant_id=tenant_id, setting=AutoUpgradeStrategySetting.LATEST, mode=AutoUpgradeMode.ALL
    )
    with (
        PluginDaemon("http://127.0.0.1:9", API_KEY, timeout=2) as daemon,
        Marketplace("http://127.0.0.1:9", timeout=2, max_package_size=10) as market,
        pytest.raises(TransientError, match="cannot reach plugin daemon plugin list"),
    ):
        run(autoupgrade.check_tenant, daemon, market, strategy)


def test_a_malformed_daemon_entry_does_not_hide_the_others(
    fake: FakePluginServices, tenant_id: str
) -> None:
    broken = entry(TONGYI, "0.1.2")
    del broken["version"]
    fake.install(tenant_id, entry(OPENAI, "0.1.2"), broken)
    fake.release(OPENAI, "0.1.3")
    fake.release(TONGYI, "0.1.3")

    outcomes = check(fake, tenant_id)

    assert outcomes[OPENAI]["action"] == "upgraded"
    assert outcomes[TONGYI] == {
        "plugin_id": TONGYI, "from": None, "to": None, "action": "skipped",
        "reason": "the daemon's entry lacks version", "daemon_task_id": None,
    }  # fmt: skip


def test_one_plugins_failure_does_not_stop_the_others(
    fake: FakePluginServices, tenant_id: str
) -> None:
    installs(fake, tenant_id)
    fake.refused.add(fake.release(OPENAI, "0.1.3"))
    fake.release(TONGYI, "0.1.4", known=False)
    fake.packages[fake.latest[TONGYI]["latest_package_identifier"]] = b"x" * 2048  # too large
    fake.install_count_status = 500

    outcomes = check(fake, tenant_id)

    assert outcomes[OPENAI]["action"] == "failed"
    assert "PluginDaemonBadRequestError" in outcomes[OPENAI]["reason"]
    assert outcomes[TONGYI]["action"] == "failed"
    assert "more than the 1024 bytes allowed" in outcomes[TONGYI]["reason"]


def test_a_failing_install_count_does_not_block_the_upgrade(
    fake: FakePluginServices, tenant_id: str
) -> None:
    fake.install(tenant_id, entry(OPENAI, "0.1.2"))
    fake.release(OPENAI, "0.1.3")
    fake.install_count_status = 500

    assert check(fake, tenant_id)[OPENAI]["action"] == "upgraded"


@pytest.mark.parametrize(
    ("mode", "lists", "candidates"),
    [
        (AutoUpgradeMode.ALL, {}, [OPENAI, TONGYI]),
        (AutoUpgradeMode.PARTIAL, {"include_plugins": (TONGYI,)}, [TONGYI]),
        (AutoUpgradeMode.PARTIAL, {}, []),
        (AutoUpgradeMode.EXCLUDE, {"exclude_plugins": (TONGYI,)}, [OPENAI]),
    ],
)
def test_the_mode_selects_the_candidates(
    fake: FakePluginServices,
    tenant_id: str,
    mode: AutoUpgradeMode,
    lists: dict[str, tuple[str, ...]],
    candidates: list[str],
) -> None:
    installs(fake, tenant_id)
    fake.release(OPENAI, "0.1.3")
    fake.release(TONGYI, "0.1.3")

    outcomes = check(fake, tenant_id, mode=mode, **lists)

    assert sorted(outcomes) == candidates
    assert [call[3] for call in fake.calls("market") if call[2] == "batch"] == (
        [candidates] if candidates else []
    )


def test_every_page_of_installations_is_read(fake: FakePluginServices, tenant_id: str) -> None:
    fake.install(tenant_id, *(entry(f"org/p{n:03}", "1.0.0") for n in range(300)))

    outcomes = check(fake, tenant_id)

    assert [call[3] for call in fake.calls("daemon")] == ["1", "2"]
    assert [len(call[3]) for call in fake.calls("market")] == [100, 100, 100]
    assert len(outcomes) == 300
    assert {o["reason"] for o in outcomes.values()} == {"not in the marketplace"}


def test_the_workspaces_current_strategy_wins_over_the_arguments(
    fake: FakePluginServices, tenant_id: str
) -> None:
    installs(fake, tenant_id)
    fake.release(OPENAI, "0.1.3")
    make_strategy(tenant_id, strategy_setting=AutoUpgradeStrategySetting.DISABLED)

    assert check(fake, tenant_id, AutoUpgradeStrategySetting.LATEST) == {}
    assert fake.requests == []


# -- which workspaces are due ------------------------------------------------------------------


def make_strategy(tenant_id: str, **values: Any) -> None:
    with db.session_scope() as session:
        session.add(TenantPluginAutoUpgradeStrategy(tenant_id=tenant_id, **values))


def seconds_of_day(moment: datetime) -> int:
    return moment.hour * 3600 + moment.minute * 60 + moment.second


def deferred_checks() -> list[str]:
    with db.session_scope(new=True) as session:
        return list(
            session.scalars(
                sa.text(
                    "SELECT args->>'tenant_id' FROM procrastinate_jobs WHERE task_name = "
                    "'plugins.process_tenant_plugin_autoupgrade_check' ORDER BY id"
                )
            )
        )


def test_a_workspace_whose_time_passed_is_checked_once(tenant_id: str) -> None:
    now = datetime.now(UTC)
    make_strategy(
        tenant_id,
        upgrade_time_of_day=seconds_of_day(now - timedelta(hours=2)),
        created_at=now - timedelta(days=3),
        last_checked_at=now - timedelta(days=1, hours=1),
    )

    assert run(autoupgrade.check_due, now=now, limit=10, defer=_defer) == [tenant_id]
    assert run(autoupgrade.check_due, now=now + timedelta(minutes=15), limit=10, defer=_defer) == []
    assert deferred_checks() == [tenant_id]


@pytest.mark.parametrize(
    ("time_of_day", "created", "last_checked", "due"),
    [
        (timedelta(hours=-1), timedelta(days=-3), None, True),  # never checked
        (timedelta(hours=-1), timedelta(days=-3), timedelta(days=-3), True),  # fleet down 3 days
        (timedelta(hours=-1), timedelta(days=-3), timedelta(minutes=-30), False),  # checked
        (timedelta(hours=1), timedelta(days=-3), timedelta(hours=-20), False),  # not yet today
        (timedelta(hours=1), timedelta(days=-3), timedelta(hours=-24), True),  # yesterday's
        (timedelta(hours=-1), timedelta(minutes=-30), None, False),  # created after its time
    ],
)
def test_due_is_row_state(
    tenant_id: str,
    time_of_day: timedelta,
    created: timedelta,
    last_checked: timedelta | None,
    due: bool,
) -> None:
    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    make_strategy(
        tenant_id,
        upgrade_time_of_day=seconds_of_day(now + time_of_day),
        created_at=now + created,
        last_checked_at=None if last_checked is None else now + last_checked,
    )

    assert run(autoupgrade.check_due, now=now, limit=10, defer=_defer) == (
        [tenant_id] if due else []
    )


def test_disabled_workspaces_are_never_due(tenant_id: str) -> None:
    make_strategy(
        tenant_id,
        strategy_setting=AutoUpgradeStrategySetting.DISABLED,
        created_at=datetime.now(UTC) - timedelta(days=3),
    )

    assert run(autoupgrade.check_due, now=datetime.now(UTC), limit=10, defer=_defer) == []


def test_the_check_task_defers_difys_arguments(tenant_id: str) -> None:
    make_strategy(
        tenant_id,
        strategy_setting=AutoUpgradeStrategySetting.LATEST,
        upgrade_mode=AutoUpgradeMode.EXCLUDE,
        exclude_plugins=[TONGYI],
        upgrade_time_of_day=0,
        created_at=datetime.now(UTC) - timedelta(days=2),
    )

    job = check_upgradable_plugin_task.delay()
    inprocess.drain(["plugin"])

    assert job.get(timeout=5) == [tenant_id]
    with db.session_scope(new=True) as session:
        args = session.scalar(
            sa.text(
                "SELECT args FROM procrastinate_jobs WHERE task_name = "
                "'plugins.process_tenant_plugin_autoupgrade_check'"
            )
        )
    assert args == {
        "tenant_id": tenant_id, "strategy_setting": "latest", "upgrade_time_of_day": 0,
        "upgrade_mode": "exclude", "exclude_plugins": [TONGYI], "include_plugins": [],
    }  # fmt: skip


def _defer(session: Any, arguments: dict[str, Any]) -> None:
    process_tenant_plugin_autoupgrade_check_task.apply_async(kwargs=arguments, session=session)
