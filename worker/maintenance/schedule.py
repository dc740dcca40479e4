"""The schedule table: every periodic job, its trigger, its catch-up policy and its switch.

Entries only defer a task (with the task's queueing lock, else ``schedule:<name>``): the work
runs as a job, with its retries, locks and outcome. Names are Dify's beat keys where Dify has the
job. A disabled entry stays in the table (``manage.py schedule`` lists it) and never fires.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, timedelta
from typing import Any

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger

from worker.config import Settings
from worker.jobs import CeleryTask
from worker.maintenance import ticks
from worker.maintenance.ticks import Policy

#: Dify's schedule of ``check_upgradable_plugin_task``: every quarter hour, UTC.
PLUGIN_CHECK_CRON = {"minute": "*/15"}
#: Dify's Monday 10:00 (UTC) notice of auto-disabled documents.
DOCUMENT_NOTIFY_CRON = {"day_of_week": "mon", "hour": "10", "minute": "0"}
#: Hours (UTC) of the daily maintenance (Dify 1.14's times).
EMBEDDING_CACHE_HOUR = 2
UNUSED_DATASETS_HOUR = 3
#: The ops-trace payload sweep runs hourly.
TRACE_SWEEP_INTERVAL = 3600


@dataclass(frozen=True, kw_only=True)
class PeriodicJob:
    """One entry of the schedule table."""

    #: Stable name, the key of its ``scheduler_ticks`` rows.
    name: str
    task: CeleryTask
    trigger: BaseTrigger
    policy: Policy
    enabled: bool = True
    #: Why it is off (the settings that switch it), for ``manage.py schedule``.
    switch: str = ""
    kwargs: Mapping[str, Any] = field(default_factory=dict)

    @property
    def queueing_lock(self) -> str:
        """At most one waiting job per entry: a tick whose previous job still waits defers none."""
        return self.task.queueing_lock or f"schedule:{self.name}"


def table(settings: Settings) -> list[PeriodicJob]:
    """Every periodic job, enabled or not, as ``settings`` configure them."""
    from worker.tasks import housekeeping, maintenance, ops_trace, plugins, retention

    days = settings.beat_scheduler_days

    return [
        PeriodicJob(
            name="check_upgradable_plugin_task",
            task=plugins.check_upgradable_plugin_task,
            trigger=ticks.cron(**PLUGIN_CHECK_CRON),
            policy=Policy.COALESCE,
            enabled=settings.check_upgradable_plugins and settings.marketplace_enabled,
            switch="ENABLE_CHECK_UPGRADABLE_PLUGIN_TASK and MARKETPLACE_ENABLED",
        ),
        PeriodicJob(
            name="recover_stuck_documents",
            task=maintenance.recover_stuck_documents_task,
            trigger=ticks.every(settings.sweep_interval),
            policy=Policy.COALESCE,
        ),
        PeriodicJob(
            name="prune_finished_jobs",
            task=retention.prune_finished_jobs_task,
            trigger=ticks.every(settings.retention_interval),
            policy=Policy.COALESCE,
        ),
        PeriodicJob(
            name="sweep_trace_payloads",
            task=ops_trace.sweep_trace_payloads_task,
            trigger=ticks.every(TRACE_SWEEP_INTERVAL),
            policy=Policy.COALESCE,
        ),
        PeriodicJob(
            name="clean_embedding_cache_task",
            task=housekeeping.clean_embedding_cache_task,
            trigger=_every_days_at(days, EMBEDDING_CACHE_HOUR),
            policy=Policy.COALESCE,
            enabled=settings.clean_embedding_cache,
            switch="ENABLE_CLEAN_EMBEDDING_CACHE_TASK",
        ),
        PeriodicJob(
            name="clean_unused_datasets_task",
            task=housekeeping.clean_unused_datasets_task,
            trigger=_every_days_at(days, UNUSED_DATASETS_HOUR),
            policy=Policy.COALESCE,
            enabled=settings.clean_unused_datasets,
            switch="ENABLE_CLEAN_UNUSED_DATASETS_TASK",
        ),
        PeriodicJob(
            name="mail_clean_document_notify_task",
            task=housekeeping.mail_clean_document_notify_task,
            trigger=ticks.cron(**DOCUMENT_NOTIFY_CRON),
            policy=Policy.COALESCE,
            enabled=settings.clean_document_notify,
            switch="ENABLE_MAIL_CLEAN_DOCUMENT_NOTIFY_TASK",
        ),
        PeriodicJob(
            name="datasets-queue-monitor",
            task=housekeeping.queue_monitor_task,
            trigger=ticks.every(settings.queue_monitor_interval * 60),
            policy=Policy.SKIP,
            enabled=settings.queue_monitor,
            switch="ENABLE_DATASETS_QUEUE_MONITOR",
        ),
    ]


def _every_days_at(days: int, hour: int) -> IntervalTrigger:
    """Every ``days`` days at ``hour``:00 UTC, counted from the epoch (Dify's
    ``CELERY_BEAT_SCHEDULER_TIME`` days, at 1.14's fixed hours)."""
    return IntervalTrigger(days=days, start_date=ticks.EPOCH + timedelta(hours=hour), timezone=UTC)
