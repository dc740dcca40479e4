"""The schedule table, its settings and its named SQL, without a database."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from worker.config import ConfigError, Settings
from worker.domain import sql
from worker.maintenance import schedule, ticks
from worker.maintenance.ticks import Policy

WORKER = Path(__file__).resolve().parents[3] / "worker"


def test_every_periodic_job_defers_a_task_with_a_queueing_lock() -> None:
    table = schedule.table(Settings())

    assert [job.name for job in table] == [
        "check_upgradable_plugin_task", "recover_stuck_documents", "prune_finished_jobs",
        "sweep_trace_payloads", "clean_embedding_cache_task", "clean_unused_datasets_task",
        "mail_clean_document_notify_task", "datasets-queue-monitor",
    ]  # fmt: skip
    assert {job.task.name: job.queueing_lock for job in table} == {
        "plugins.check_upgradable_plugin": "plugins:check_upgradable_plugin",
        "indexing.recover_stuck_documents": "indexing:recover_stuck_documents",
        "maintenance.prune_finished_jobs": "maintenance:prune",
        "ops_trace.sweep_payloads": "ops_trace:sweep",
        "housekeeping.clean_embedding_cache": "housekeeping:embedding_cache",
        "housekeeping.clean_unused_datasets": "housekeeping:unused_datasets",
        "housekeeping.mail_clean_document_notify": "housekeeping:clean_document_notify",
        "housekeeping.queue_monitor": "housekeeping:queue_monitor",
    }
    assert {job.policy for job in table if job.name != "datasets-queue-monitor"} == {
        Policy.COALESCE
    }
    # Dify's maintenance jobs are off by default, as in Dify
    assert [job.name for job in table if not job.enabled] == [
        "clean_embedding_cache_task", "clean_unused_datasets_task",
        "mail_clean_document_notify_task", "datasets-queue-monitor",
    ]  # fmt: skip


@pytest.mark.parametrize(
    "switch", [{"check_upgradable_plugins": False}, {"marketplace_enabled": False}]
)
def test_the_plugin_check_follows_difys_switches(switch: dict[str, bool]) -> None:
    plugin_check = schedule.table(Settings(**switch))[0]

    assert not plugin_check.enabled
    assert plugin_check.switch == "ENABLE_CHECK_UPGRADABLE_PLUGIN_TASK and MARKETPLACE_ENABLED"


def test_intervals_come_from_the_settings() -> None:
    table = {job.name: job for job in schedule.table(Settings(sweep_interval=1))}

    assert ticks.describe(table["recover_stuck_documents"].trigger) == "every 1 s"
    assert ticks.describe(table["prune_finished_jobs"].trigger) == "every 3600 s"


def test_settings_read_difys_names_and_durations() -> None:
    settings = Settings.from_env(
        {
            "WORKER_SCHEDULER": "false",
            "WORKER_SWEEP_INTERVAL": "5m",
            "WORKER_RETAIN_SUCCEEDED": "12h",
            "WORKER_RETAIN_FAILED": "7d",
            "WORKER_RETAIN_MAIL_DELIVERIES": "90",
            "PLUGIN_DAEMON_URL": "http://daemon:5002/",
            "PLUGIN_DAEMON_KEY": "k",
            "MARKETPLACE_API_URL": "https://market.example",
            "MARKETPLACE_ENABLED": "false",
            "ENABLE_CHECK_UPGRADABLE_PLUGIN_TASK": "false",
        }
    )

    assert not settings.scheduler
    assert settings.sweep_interval == 300
    assert (settings.retain_succeeded, settings.retain_failed) == (43200, 604800)
    assert settings.retain_mail_deliveries == 90
    assert settings.plugin_daemon_url == "http://daemon:5002"
    assert settings.plugin_daemon_key.get_secret_value() == "k"
    assert not settings.marketplace_enabled and not settings.check_upgradable_plugins


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("WORKER_SWEEP_INTERVAL", "0", "WORKER_SWEEP_INTERVAL: Input should be greater than"),
        ("WORKER_RETENTION_INTERVAL", "1.5", "WORKER_RETENTION_INTERVAL: Input should be a valid"),
        ("WORKER_RETAIN_FAILED", "soon", "WORKER_RETAIN_FAILED: Input should be a valid number"),
        ("WORKER_RETAIN_SUCCEEDED", "-1d", "WORKER_RETAIN_SUCCEEDED: Input should be greater"),
        ("PLUGIN_DAEMON_URL", "daemon:5002", "PLUGIN_DAEMON_URL: expected an http(s) URL"),
        ("WORKER_SCHEDULER", "maybe", "WORKER_SCHEDULER: Input should be a valid boolean"),
    ],
)
def test_bad_settings_are_refused_naming_the_setting(name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        Settings.from_env({name: value})


def test_the_daemon_key_never_appears_in_errors() -> None:
    with pytest.raises(ConfigError) as refused:
        Settings.from_env({"PLUGIN_DAEMON_KEY": "s3cret", "WORKER_SWEEP_INTERVAL": "0"})

    assert "s3cret" not in str(refused.value)


def test_every_named_query_the_maintenance_code_uses_exists() -> None:
    known = sql.queries()
    sources = [
        *(WORKER / "maintenance").glob("*.py"),
        WORKER / "jobs" / "state.py",
    ]
    used = {
        name
        for path in sources
        for name in re.findall(
            r'(?:queries\(\)\[|\bq\[|_query\(|_count\(\w+, )"((?:scheduler|retention)_[a-z_]+)"',
            path.read_text(),
        )
    }

    assert len(used) >= 21
    assert used <= set(known)
