"""``/metrics``: Prometheus' text format, every figure read from PostgreSQL.

Any process serving ``/metrics`` (the dashboard, each worker with ``--http``) reports the same.

**Counters** (jobs succeeded, failed, aborted, retried, processed; lost runs; the duration
histogram per task) come from procrastinate's events, which its triggers still write at every
status change (``deferred``, ``started``, ``succeeded``, ``failed``, ``aborted``,
``deferred_for_retry`` for a run that goes back to the queue, ``retried`` for an operator's
retry), and from ``procrastinate_jobs.lost_runs``. A counter is ``folded totals + what the
events above the fold point say``, read in one snapshot:

- a scrape folds events into ``dashboard_job_totals`` and moves the fold point, but only up to
  an event id below which no event can still appear: the largest id seen at one scrape, once
  every transaction that had an id a second later has ended (their ids come from a sequence
  before they commit, so a late commit can land below the newest visible id). At most
  :data:`MAX_FOLD` events per scrape, so the events above the fold point stay a short range;
- retention deletes events and jobs: triggers (migrations 0013, 0018) fold what was not folded yet
  before it goes, so a counter never goes down. ``lost_runs`` of deleted jobs are folded too.

**Gauges**: jobs waiting, scheduled, running, failed, cancelled and aborted per queue (partial
indexes; finished successes are counted by the counters, not here), the age of each queue's
oldest ready job, workers' heartbeat ages, paused queues, mail deliveries and documents by
status.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry
from sqlalchemy import orm

from worker import queues
from worker.dashboard.store import Store, q

logger = logging.getLogger(__name__)

#: Upper bounds of the duration histogram's buckets (as migration 0013 counts them).
DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
#: Events folded per transaction at most.
MAX_FOLD = 50_000
#: Seconds a scrape (or a round of the background fold) may spend folding.
FOLD_BUDGET = 2.0
#: Seconds between two background folds of a process serving the dashboard.
FOLD_INTERVAL = 15.0

#: Counter name -> the metrics of ``dashboard_job_totals`` it sums, and its help.
COUNTERS: dict[str, tuple[tuple[str, ...], str]] = {
    "tl_jobs_succeeded": (("succeeded",), "Runs that ended the job succeeded."),
    "tl_jobs_failed": (("failed",), "Jobs that failed for good (poison jobs included)."),
    "tl_jobs_aborted": (("aborted",), "Running jobs aborted on request."),
    "tl_jobs_processed": (
        ("succeeded", "failed", "aborted"),
        "Jobs that ended after running: succeeded, failed or aborted.",
    ),
    "tl_jobs_retried": (
        ("retried",),
        "Runs that put their job back in the queue (a retry of its policy, an interrupted or "
        "a lost run) and failed jobs retried by an operator.",
    ),
    "tl_job_lost_runs": (("lost_runs",), "Runs lost with a dead worker."),
}


def fold(store: Store, *, budget: float = FOLD_BUDGET) -> None:
    """Move the fold point as far as is safe (see the module's docstring), :data:`MAX_FOLD`
    events per short transaction, for about ``budget`` seconds at most. Does nothing while
    another process folds or retention deletes."""
    deadline = time.monotonic() + budget
    while _fold_step(store) and time.monotonic() < deadline:
        pass


def _fold_step(store: Store) -> bool:
    """One step; whether there is more to fold now."""
    with store.write() as session:
        state = session.execute(q("metric_state_for_fold")).first()
        if state is None:
            return False
        if state.candidate_xmax is None:
            if state.settled:
                session.execute(q("metric_state_set_xmax"))
            return False
        if state.xmin < state.candidate_xmax:
            return False  # a transaction that may add an event below the candidate still runs
        if state.folded_upto >= state.candidate_upto:
            session.execute(q("metric_state_next_candidate"))
            return False
        high = min(state.candidate_upto, state.folded_upto + MAX_FOLD)
        session.execute(q("metric_fold_events"), {"lo": state.folded_upto, "hi": high})
        return bool(high < state.candidate_upto)


def job_counts(session: orm.Session) -> dict[tuple[str, str, str], float]:
    """``(queue, task, metric) -> value``: folded totals plus what is above the fold point."""
    values: dict[tuple[str, str, str], float] = defaultdict(float)
    for name in ("metric_totals", "metric_unfolded", "metric_lost_runs"):
        for row in session.execute(q(name)):
            values[(row.queue_name, row.task_name, row.metric)] += float(row.value)
    return values


class DatabaseCollector(Collector):
    """Reads every metric from the database at each scrape."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self) -> Iterator[Metric]:
        fold(self.store)
        with self.store.read() as session:
            counts = job_counts(session)
            yield from _counters(counts)
            yield _durations(counts)
            yield from _gauges(session)

    def describe(self) -> Iterator[Metric]:
        return iter(())  # no description up front: collect() reads the database


class FoldLoop:
    """Folds every :data:`FOLD_INTERVAL` seconds in a thread, so that the range above the fold
    point stays short even when nobody scrapes."""

    def __init__(self, store: Store, interval: float = FOLD_INTERVAL) -> None:
        self.store = store
        self.interval = interval
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="metrics-fold", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(FOLD_BUDGET + 5)

    def _run(self) -> None:
        while not self._stopping.wait(self.interval):
            try:
                fold(self.store)
            except sa.exc.SQLAlchemyError as exc:
                logger.warning("metrics fold failed: %s", exc, extra={"action": "metrics_fold"})


def registry(store: Store) -> CollectorRegistry:
    """A registry holding the database collector only (no process metrics of this process:
    they would differ between the processes serving ``/metrics``)."""
    result = CollectorRegistry(auto_describe=False)
    result.register(DatabaseCollector(store))
    return result


def _counters(counts: dict[tuple[str, str, str], float]) -> Iterator[Metric]:
    series = {(queue, task) for queue, task, _ in counts}
    for name, (metrics, text) in COUNTERS.items():
        family = CounterMetricFamily(name, text, labels=["queue", "task"])
        for queue, task in sorted(series):
            value = sum(counts.get((queue, task, metric), 0.0) for metric in metrics)
            if value:
                family.add_metric([queue, task], value)
        yield family


def _durations(counts: dict[tuple[str, str, str], float]) -> Metric:
    per_task: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for (_, task, metric), value in counts.items():
        if metric.startswith(("le:", "duration_")):
            per_task[task][metric] += value
    family = HistogramMetricFamily(
        "tl_job_duration_seconds",
        "Run time of jobs that ended (the recorded outcome's duration, else from fetch to end).",
        labels=["task"],
    )
    for task, values in sorted(per_task.items()):
        buckets = [(f"{bound:g}", values[f"le:{bound:g}"]) for bound in DURATION_BUCKETS]
        buckets.append(("+Inf", values["duration_count"]))
        family.add_metric([task], buckets, sum_value=values["duration_sum"])
    return family


def _gauges(session: orm.Session) -> Iterator[Metric]:
    jobs = GaugeMetricFamily(
        "tl_jobs", "Jobs now, by queue and status (succeeded jobs: see the counters).",
        labels=["queue", "status"],
    )  # fmt: skip
    lag = GaugeMetricFamily(
        "tl_queue_lag_seconds", "Age of the oldest job ready to run, by queue.", labels=["queue"]
    )
    for row in session.execute(q("queue_live_counts")):
        for status, value in (("ready", row.ready), ("scheduled", row.scheduled),
                              ("running", row.running)):  # fmt: skip
            jobs.add_metric([row.queue_name, status], value)
        if row.ready:
            oldest = session.execute(q("oldest_ready"), {"queue": row.queue_name}).scalar()
            lag.add_metric([row.queue_name], float(oldest or 0.0))
    for row in session.execute(q("metric_ended_badly")):
        jobs.add_metric([row.queue_name, row.status], row.jobs)
    yield jobs
    yield lag
    yield _workers(session)
    paused = {row.queue_name for row in session.execute(q("paused_queues"))}
    pauses = GaugeMetricFamily(
        "tl_queue_paused", "1 when the queue's fetching is paused.", labels=["queue"]
    )
    for name in sorted(set(queues.ALL_QUEUES) | paused):
        pauses.add_metric([name], 1.0 if name in paused else 0.0)
    yield pauses
    yield _by_status(session, "mail_by_status", "tl_mail_deliveries", "Mail deliveries.")
    yield _by_status(session, "metric_documents", "tl_documents", "Documents by indexing status.")


def _workers(session: orm.Session) -> Metric:
    beats = GaugeMetricFamily(
        "tl_worker_heartbeat_age_seconds",
        "Seconds since each registered worker's last heartbeat.",
        labels=["worker_id"],
    )
    for row in session.execute(q("workers")):
        beats.add_metric([str(row.id)], float(row.age))
    return beats


def _by_status(session: orm.Session, query: str, name: str, text: str) -> Metric:
    family = GaugeMetricFamily(name, text, labels=["status"])
    for row in session.execute(q(query)):
        values: Any = row._mapping
        family.add_metric([str(row.status)], float(list(values.values())[-1]))
    return family
