"""The overview: per queue, what waits, runs and failed in the last hour; throughput; workers.

Every figure is a bounded read: waiting and running jobs through the partial index of unfinished
jobs, the last hour through the range of event ids it covers (``tl_dashboard_event_id_at``), the
oldest ready job among the lowest ids of its queue.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import orm

from worker import queues
from worker.dashboard.chart import Minute
from worker.dashboard.store import q

#: The window of the failures and the chart.
WINDOW = timedelta(hours=1)


@dataclass(kw_only=True)
class QueueRow:
    """One queue's line of the overview."""

    name: str
    ready: int = 0
    scheduled: int = 0
    running: int = 0
    failed_last_hour: int = 0
    #: Seconds the oldest ready job has waited (``None``: none waits).
    oldest_ready: float | None = None
    paused_by: str | None = None


@dataclass(kw_only=True)
class Overview:
    """Everything the overview shows, read in one snapshot."""

    now: datetime
    queues: list[QueueRow]
    minutes: list[Minute]
    workers: list[Any]
    paused: list[Any] = field(default_factory=list)

    @property
    def succeeded_last_hour(self) -> int:
        """Jobs that succeeded in the chart's hour."""
        return sum(minute.succeeded for minute in self.minutes)

    @property
    def totals(self) -> QueueRow:
        """The sum over queues."""
        total = QueueRow(name="all")
        for row in self.queues:
            total.ready += row.ready
            total.scheduled += row.scheduled
            total.running += row.running
            total.failed_last_hour += row.failed_last_hour
        return total


def read(session: orm.Session, now: datetime) -> Overview:
    """The overview as of ``now`` (the database's clock, minute-aligned for the chart)."""
    rows = {name: QueueRow(name=name) for name in queues.ALL_QUEUES}
    for count in session.execute(q("queue_live_counts")):
        row = rows.setdefault(count.queue_name, QueueRow(name=count.queue_name))
        row.ready, row.scheduled, row.running = count.ready, count.scheduled, count.running
    paused = list(session.execute(q("paused_queues")))
    for pause in paused:
        rows.setdefault(
            pause.queue_name, QueueRow(name=pause.queue_name)
        ).paused_by = pause.paused_by
    start = now.replace(second=0, microsecond=0) - WINDOW + timedelta(minutes=1)
    from_id = session.execute(q("event_id_at"), {"at": start}).scalar_one()
    per_minute: dict[datetime, list[int]] = defaultdict(lambda: [0, 0])
    for ended in session.execute(q("ended_per_minute"), {"from_id": from_id}):
        per_minute[ended.minute][0 if ended.type == "succeeded" else 1] += ended.jobs
    for failed in session.execute(q("failed_per_queue"), {"from_id": from_id}):
        rows.setdefault(
            failed.queue_name, QueueRow(name=failed.queue_name)
        ).failed_last_hour = failed.jobs
    for row in rows.values():
        if row.ready:
            row.oldest_ready = session.execute(q("oldest_ready"), {"queue": row.name}).scalar()
    minutes = [
        Minute(at=at, succeeded=per_minute[at][0], failed=per_minute[at][1])
        for at in (start + timedelta(minutes=n) for n in range(int(WINDOW.total_seconds()) // 60))
    ]
    return Overview(
        now=now,
        queues=sorted(rows.values(), key=lambda r: r.name),
        minutes=minutes,
        workers=list(session.execute(q("workers"))),
        paused=paused,
    )
