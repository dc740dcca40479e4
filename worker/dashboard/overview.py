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
    succeeded_last_hour: int = 0
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
    def totals(self) -> QueueRow:
        """The sum over queues."""
        total = QueueRow(name="all")
        for row in self.queues:
            total.ready += row.ready
            total.scheduled += row.scheduled
            total.running += row.running
            total.succeeded_last_hour += row.succeeded_last_hour
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
    for ended in session.execute(q("ended_since"), {"from_id": from_id}):
        row = rows.setdefault(ended.queue_name, QueueRow(name=ended.queue_name))
        if ended.type == "succeeded":
            row.succeeded_last_hour += ended.jobs
            per_minute[ended.minute][0] += ended.jobs
        else:
            row.failed_last_hour += ended.jobs
            per_minute[ended.minute][1] += ended.jobs
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
