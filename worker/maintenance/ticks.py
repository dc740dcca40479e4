"""Scheduled times of periodic jobs: computed alike by every process, and what is due now.

Every trigger is anchored to wall-clock times (UTC): cron fields, or intervals counted from the
Unix epoch. Two processes (or two leaders during a failover) therefore compute the same
``tick_at`` for the same occurrence, and the ``scheduler_ticks`` primary key lets only one of
them fire it. Nothing here touches the database: :func:`plan` turns a job's last recorded tick
and the time now into the tick to fire and the missed ones to record.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from worker.domain.models.scheduler import TickOutcome

#: Where every interval trigger starts counting, so that all processes agree on its times.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: Missed ticks older than this are neither fired nor recorded.
HORIZON = timedelta(days=7)
#: At most this many missed ticks of one job are recorded at once (the latest ones).
MAX_MISSED_TICKS = 10_000
#: A tick this old at most still fires under the ``skip`` policy (and starts a job never
#: fired before): the timer's own tick, not one missed while no scheduler ran.
ON_TIME_WITHIN = timedelta(seconds=10)
#: First window searched backwards for the latest ticks; it doubles until it holds enough.
_FIRST_WINDOW = timedelta(seconds=1)
_TICK = timedelta(microseconds=1)


class Policy(enum.StrEnum):
    """What becomes of ticks missed while no scheduler ran (the fleet was down, no leader)."""

    #: One run for all of them: the latest fires, the others are recorded ``coalesced``.
    COALESCE = "coalesce"
    #: None of them runs (recorded ``skipped``); the job runs again at its next tick.
    SKIP = "skip"


def every(seconds: int) -> IntervalTrigger:
    """A trigger every ``seconds`` seconds, at the multiples of ``seconds`` since the epoch."""
    return IntervalTrigger(seconds=seconds, start_date=EPOCH, timezone=UTC)


def cron(**fields: str) -> CronTrigger:
    """A cron trigger in UTC (``cron(minute="*/15")``)."""
    return CronTrigger(timezone=UTC, **fields)


def describe(trigger: BaseTrigger) -> str:
    """The trigger as ``manage.py schedule`` shows it."""
    if isinstance(trigger, IntervalTrigger):
        return f"every {int(trigger.interval.total_seconds())} s"
    if isinstance(trigger, CronTrigger):
        fields = " ".join(f"{f.name}={f}" for f in trigger.fields if not f.is_default)
        return f"cron {fields} (UTC)"
    return str(trigger)


def next_after(trigger: BaseTrigger, moment: datetime) -> datetime | None:
    """The trigger's first time strictly after ``moment``."""
    found: datetime | None = trigger.get_next_fire_time(None, moment + _TICK)
    return found


def ticks_between(
    trigger: BaseTrigger, start: datetime, end: datetime, *, limit: int = MAX_MISSED_TICKS
) -> tuple[list[datetime], bool]:
    """The latest ``limit`` times of the trigger in ``(start, end]``, oldest first, and whether
    older ones were left out."""
    window = _FIRST_WINDOW
    while True:
        since = max(start, end - window)
        found = _enumerate(trigger, since, end)
        if since == start:
            return found[-limit:], len(found) > limit
        if len(found) >= limit:
            return found[-limit:], True
        window *= 2


def _enumerate(trigger: BaseTrigger, start: datetime, end: datetime) -> list[datetime]:
    found = []
    moment = next_after(trigger, start)
    while moment is not None and moment <= end:
        found.append(moment)
        moment = next_after(trigger, moment)
    return found


@dataclass(frozen=True, kw_only=True)
class Plan:
    """What one firing of a periodic job does."""

    #: The tick whose job is deferred now, if any.
    fire: datetime | None = None
    #: Missed ticks recorded without a job of their own, with what became of them.
    missed: list[tuple[datetime, TickOutcome]] = field(default_factory=list)
    #: Missed ticks older than these were beyond the horizon or the cap, and not recorded.
    truncated: bool = False


def plan(trigger: BaseTrigger, policy: Policy, *, last: datetime | None, now: datetime) -> Plan:
    """The ticks due at ``now`` for a job whose latest recorded tick is ``last``.

    A job never fired before starts from now: its current tick fires if it is at most
    :data:`ON_TIME_WITHIN` old, and nothing older is recorded. Otherwise every tick after
    ``last`` (within :data:`HORIZON`) is due: under ``coalesce`` the latest fires and the others
    are recorded ``coalesced``; under ``skip`` the latest fires only if it is on time, and the
    others (or all) are recorded ``skipped``.
    """
    if last is None:
        current, _ = ticks_between(trigger, now - HORIZON, now, limit=1)
        if current and now - current[0] <= ON_TIME_WITHIN:
            return Plan(fire=current[0])
        return Plan()
    due, truncated = ticks_between(trigger, max(last, now - HORIZON), now)
    truncated = truncated or last < now - HORIZON
    if not due:
        return Plan()
    latest: datetime | None = due[-1]
    older = due[:-1]
    if policy is Policy.COALESCE:
        return Plan(
            fire=latest, missed=[(t, TickOutcome.COALESCED) for t in older], truncated=truncated
        )
    if now - due[-1] > ON_TIME_WITHIN:
        older, latest = due, None
    return Plan(fire=latest, missed=[(t, TickOutcome.SKIPPED) for t in older], truncated=truncated)
