"""``/metrics``: Prometheus' text format, counters equal to the jobs run, never going down."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from flask import Flask
from prometheus_client.parser import text_string_to_metric_families

from tests import sample_tasks
from tests.inprocess import drain
from tests.retention_rows import make_job
from tests.uow import run
from worker import db, runtime
from worker.config import Settings
from worker.dashboard import metrics
from worker.dashboard.app import create_app
from worker.maintenance import retention

EVERYTHING = retention.RetentionPolicy(
    finished=timedelta(0), failed=timedelta(0), mail_deliveries=timedelta(0)
)


@pytest.fixture
def app(database_url: str) -> Iterator[Flask]:
    runtime.setup(database_url)
    flask_app = create_app(database_url, Settings())
    yield flask_app
    flask_app.config["store"].close()
    runtime.teardown()


def execute(statement: str, **params: object) -> None:
    with db.session_scope(new=True) as session:
        session.execute(sa.text(statement), params)


def scrape(app: Flask) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of ``/metrics``, parsed by prometheus_client's own parser."""
    response = app.test_client().get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain; version=")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def counter(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str,
            task: str, queue: str = "default") -> float:  # fmt: skip
    return samples.get((f"{name}_total", (("queue", queue), ("task", task))), 0.0)


def fold_everything(app: Flask) -> None:
    """Fold until the fold point reaches the newest event (ageing the candidate instead of
    waiting a second for it to settle)."""
    store = app.config["store"]
    for _ in range(10):
        execute("UPDATE dashboard_metric_state SET candidate_at = now() - interval '1 hour'")
        metrics.fold(store)
        with db.session_scope(new=True) as session:
            folded, newest = session.execute(
                sa.text(
                    "SELECT folded_upto, (SELECT max(id) FROM procrastinate_events) "
                    "FROM dashboard_metric_state"
                )
            ).one()
        if folded >= newest:
            return
    raise AssertionError(f"fold point {folded} never reached event {newest}")


def run_jobs(tmp_path: Path) -> None:
    """3 successes of tests.add, 2 failures of tests.broken, tests.flaky retried twice then
    successful."""
    for n in range(3):
        sample_tasks.add.delay(n, 1)
    for reason in ("one", "two"):
        sample_tasks.broken.delay(reason)
    sample_tasks.flaky.delay(str(tmp_path / "counter"), 2)
    drain(["default"])


def expected_counts(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float]) -> None:
    assert counter(samples, "tl_jobs_succeeded", "tests.add") == 3
    assert counter(samples, "tl_jobs_processed", "tests.add") == 3
    assert counter(samples, "tl_jobs_failed", "tests.broken") == 2
    assert counter(samples, "tl_jobs_processed", "tests.broken") == 2
    assert counter(samples, "tl_jobs_retried", "tests.broken") == 0  # permanent errors
    assert counter(samples, "tl_jobs_retried", "tests.flaky") == 2
    assert counter(samples, "tl_jobs_succeeded", "tests.flaky") == 1
    assert samples[("tl_job_duration_seconds_count", (("task", "tests.add"),))] == 3
    assert samples[("tl_job_duration_seconds_bucket", (("le", "+Inf"), ("task", "tests.add")))] == 3


def test_metrics_parse_and_count_the_jobs_run(app: Flask, tmp_path: Path) -> None:
    run_jobs(tmp_path)

    samples = scrape(app)

    expected_counts(samples)
    buckets = [
        value for (name, labels), value in samples.items()
        if name == "tl_job_duration_seconds_bucket" and ("task", "tests.broken") in labels
    ]  # fmt: skip
    assert len(buckets) == len(metrics.DURATION_BUCKETS) + 1
    assert max(buckets) == 2
    assert samples[("tl_jobs", (("queue", "default"), ("status", "failed")))] == 2
    assert samples[("tl_queue_paused", (("queue", "default"),))] == 0


def test_the_counters_stay_the_same_folded_or_not(app: Flask, tmp_path: Path) -> None:
    run_jobs(tmp_path)
    before = scrape(app)

    fold_everything(app)

    assert scrape(app) == before
    expected_counts(before)


@pytest.mark.parametrize("folded", [True, False])
def test_retention_never_makes_a_counter_go_down(app: Flask, tmp_path: Path, folded: bool) -> None:
    run_jobs(tmp_path)
    if folded:
        fold_everything(app)

    report = run(retention.prune, EVERYTHING)

    assert report.rows["procrastinate_jobs"] == 6
    expected_counts(scrape(app))


def test_jobs_deleted_with_their_events_keep_their_counts(app: Flask, tmp_path: Path) -> None:
    run_jobs(tmp_path)
    execute("UPDATE procrastinate_jobs SET lost_runs = 2 WHERE task_name = 'tests.flaky'")
    assert counter(scrape(app), "tl_job_lost_runs", "tests.flaky") == 2

    execute("DELETE FROM procrastinate_jobs")  # the events go by ON DELETE CASCADE

    samples = scrape(app)
    expected_counts(samples)
    assert counter(samples, "tl_job_lost_runs", "tests.flaky") == 2


def test_an_event_committed_late_below_the_newest_is_still_counted(
    app: Flask, database_url: str
) -> None:
    job = make_job("doing", timedelta(seconds=1))  # a tests.add job
    with psycopg.connect(database_url) as late:
        # takes an event id now, commits after newer events and folds were made
        late.execute("UPDATE procrastinate_jobs SET status = 'succeeded' WHERE id = %s", (job,))
        sample_tasks.add.delay(1, 1)
        drain(["default"])
        fold_attempts(app)
        late.commit()
    fold_everything(app)

    assert counter(scrape(app), "tl_jobs_succeeded", "tests.add") == 2  # both


def fold_attempts(app: Flask) -> None:
    """Try to fold past everything, as if many scrapes had happened."""
    for _ in range(5):
        execute("UPDATE dashboard_metric_state SET candidate_at = now() - interval '1 hour'")
        metrics.fold(app.config["store"])
