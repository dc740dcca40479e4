"""The schedule table: every periodic job, its trigger, its catch-up policy and its switch.

Entries only defer a task (with the task's queueing lock, else ``schedule:<name>``): the work
runs as a job, with its retries, locks and outcome. Names are Dify's beat keys where Dify has the
job. A disabled entry stays in the table (``manage.py schedule`` lists it) and never fires.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from apscheduler.triggers.base import BaseTrigger

from worker.config import Settings
from worker.jobs import CeleryTask
from worker.maintenance import ticks
from worker.maintenance.ticks import Policy

#: Dify's schedule of ``check_upgradable_plugin_task``: every quarter hour, UTC.
PLUGIN_CHECK_CRON = {"minute": "*/15"}


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
    from worker.tasks import maintenance, plugins, retention

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
    ]
