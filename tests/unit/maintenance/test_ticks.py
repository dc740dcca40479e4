"""Tick times every process computes alike, and what a firing does with missed ones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from worker.domain.models import TickOutcome
from worker.maintenance import ticks
from worker.maintenance.ticks import Policy

T0 = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)


def test_interval_ticks_are_multiples_of_the_interval_since_the_epoch() -> None:
    # two processes started at different times compute the same ticks
    early, late = ticks.every(300), ticks.every(300)

    first = ticks.next_after(early, T0 + timedelta(seconds=17))
    second = ticks.next_after(late, T0 + timedelta(seconds=299, microseconds=999_999))

    assert first == second == T0 + timedelta(minutes=5)
    assert ticks.next_after(early, T0) == T0 + timedelta(minutes=5), "strictly after"


def test_cron_ticks_are_in_utc() -> None:
    trigger = ticks.cron(minute="*/15")

    assert ticks.next_after(trigger, T0 + timedelta(minutes=1)) == T0 + timedelta(minutes=15)
    assert ticks.describe(trigger) == "cron minute=*/15 (UTC)"
    assert ticks.describe(ticks.every(60)) == "every 60 s"


def test_ticks_between_lists_the_latest_within_the_window_oldest_first() -> None:
    found, truncated = ticks.ticks_between(ticks.every(60), T0, T0 + timedelta(minutes=3))

    assert found == [T0 + timedelta(minutes=m) for m in (1, 2, 3)]
    assert not truncated


def test_ticks_between_keeps_only_the_latest_when_capped() -> None:
    found, truncated = ticks.ticks_between(ticks.every(1), T0, T0 + timedelta(hours=1), limit=5)

    assert found == [T0 + timedelta(hours=1, seconds=-s) for s in (4, 3, 2, 1, 0)]
    assert truncated


def test_a_job_never_fired_starts_from_now() -> None:
    trigger = ticks.every(60)

    on_time = ticks.plan(trigger, Policy.COALESCE, last=None, now=T0 + timedelta(seconds=1))
    late = ticks.plan(trigger, Policy.COALESCE, last=None, now=T0 + timedelta(seconds=30))

    assert on_time == ticks.Plan(fire=T0)
    assert late == ticks.Plan(), "an old tick of a job never fired is not caught up"


def test_coalesce_fires_the_latest_missed_tick_once_and_records_the_others() -> None:
    now = T0 + timedelta(minutes=3, seconds=20)

    plan = ticks.plan(ticks.every(60), Policy.COALESCE, last=T0, now=now)

    assert plan.fire == T0 + timedelta(minutes=3)
    assert plan.missed == [
        (T0 + timedelta(minutes=1), TickOutcome.COALESCED),
        (T0 + timedelta(minutes=2), TickOutcome.COALESCED),
    ]


def test_skip_records_missed_ticks_and_fires_only_an_on_time_one() -> None:
    trigger = ticks.every(60)

    timer = ticks.plan(trigger, Policy.SKIP, last=T0, now=T0 + timedelta(minutes=3, seconds=1))
    catch_up = ticks.plan(trigger, Policy.SKIP, last=T0, now=T0 + timedelta(minutes=3, seconds=40))

    assert timer.fire == T0 + timedelta(minutes=3)
    assert [outcome for _, outcome in timer.missed] == [TickOutcome.SKIPPED] * 2
    assert catch_up.fire is None
    assert [tick for tick, _ in catch_up.missed] == [T0 + timedelta(minutes=m) for m in (1, 2, 3)]


def test_nothing_is_due_before_the_next_tick() -> None:
    plan = ticks.plan(ticks.every(60), Policy.COALESCE, last=T0, now=T0 + timedelta(seconds=59))

    assert plan == ticks.Plan()


def test_missed_ticks_beyond_the_horizon_are_not_replayed() -> None:
    now = T0 + timedelta(days=30)

    plan = ticks.plan(ticks.cron(hour="3", minute="0"), Policy.COALESCE, last=T0, now=now)

    assert plan.fire == now
    assert len(plan.missed) == 6, "a week of daily ticks, the latest fired"
    assert plan.missed[0][0] == now - timedelta(days=6)
    assert plan.truncated
