"""What ``manage.py schedule`` shows: each periodic job's last tick and next time; the leader."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import orm

from worker.domain import sql
from worker.maintenance import ticks
from worker.maintenance.schedule import PeriodicJob

_HOLDER = re.compile(r"pid=(?P<pid>\d+) host=(?P<host>\S*)")


@dataclass(frozen=True, kw_only=True)
class JobState:
    """One periodic job as the schedule table and its latest tick describe it."""

    name: str
    task_name: str
    enabled: bool
    switch: str
    trigger: str
    policy: str
    last_tick: datetime | None
    #: What became of the last tick (``deferred``, ``coalesced``, ...).
    outcome: str | None
    job_id: int | None
    #: Status of the job the last tick deferred (``None`` once pruned).
    job_status: str | None
    #: Its next time, if enabled.
    next_tick: datetime | None


@dataclass(frozen=True, kw_only=True)
class Leader:
    """The process that holds the scheduler's lock."""

    pid: int | None
    host: str | None
    #: Its lock connection's application name, as read.
    application_name: str
    connected_since: datetime


def jobs(session: orm.Session, table: Sequence[PeriodicJob], *, now: datetime) -> list[JobState]:
    """The state of every job of ``table``, enabled or not."""
    latest = {
        row.job_name: row
        for row in session.execute(
            sa.text(sql.queries()["scheduler_latest_ticks"]), {"names": [j.name for j in table]}
        )
    }
    states = []
    for job in table:
        row = latest.get(job.name)
        states.append(
            JobState(
                name=job.name,
                task_name=job.task.name,
                enabled=job.enabled,
                switch=job.switch,
                trigger=ticks.describe(job.trigger),
                policy=job.policy.value,
                last_tick=row.tick_at if row else None,
                outcome=row.outcome if row else None,
                job_id=row.procrastinate_job_id if row else None,
                job_status=row.job_status if row else None,
                next_tick=ticks.next_after(job.trigger, now) if job.enabled else None,
            )
        )
    return states


def leader(session: orm.Session) -> Leader | None:
    """Who leads now, or ``None`` when no process does."""
    row = session.execute(sa.text(sql.queries()["scheduler_leader"])).first()
    if row is None:
        return None
    holder = _HOLDER.search(row.application_name or "")
    return Leader(
        pid=int(holder["pid"]) if holder else None,
        host=holder["host"] if holder else None,
        application_name=row.application_name or "",
        connected_since=row.backend_start,
    )
