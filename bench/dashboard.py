"""The dashboard's jobs page (and /metrics, the overview) on a table of 1,000,000 jobs.

    python bench/dashboard.py [--rows 1000000] [--requests 30]

Fills a fresh embedded PostgreSQL (or ``DATABASE_URL``) with ``--rows`` jobs deferred over the
last 24 hours across every queue and 20 tasks (97 % succeeded, 1.5 % failed, the rest cancelled,
waiting or running), three events each and an outcome for half of them, then serves the dashboard
on 127.0.0.1 (waitress, as ``manage.py dashboard``) and times real HTTP requests of each page and
filter: median and 95th percentile, in milliseconds. The target is under 200 ms for the jobs page.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import harness
from worker import queues, schema
from worker.config import Settings
from worker.dashboard import jobs as job_pages
from worker.dashboard import metrics
from worker.dashboard.app import create_app
from worker.dashboard.serving import DashboardServer
from worker.dashboard.store import Store

TARGET_MS = 200.0

FILL = """
-- the rows come with their events: no triggers
SET session_replication_role = replica;
INSERT INTO procrastinate_jobs (id, queue_name, task_name, args, status, attempts, runs,
                                run_started_at, lost_runs, scheduled_at)
SELECT i, q.queues[1 + (i * 7) %% array_length(q.queues, 1)],
       'bench.task_' || (i %% 20),
       jsonb_build_object('document_id', md5(i::text), 'n', i),
       CAST(CASE WHEN i %% 1000 < 970 THEN 'succeeded'
                 WHEN i %% 1000 < 985 THEN 'failed'
                 WHEN i %% 1000 < 990 THEN 'cancelled'
                 WHEN i > %(rows)s - 3000 THEN 'todo'
                 ELSE 'succeeded' END AS procrastinate_job_status),
       1, 1, now() - make_interval(secs => (%(rows)s - i) * 86400.0 / %(rows)s),
       CASE WHEN i %% 5000 = 0 THEN 1 ELSE 0 END, NULL
  FROM generate_series(1, %(rows)s) AS i,
       (SELECT %(queues)s::varchar[] AS queues) AS q;
SELECT setval('procrastinate_jobs_id_seq', %(rows)s);
INSERT INTO procrastinate_events (job_id, type, at)
SELECT j.id, CAST(e.type AS procrastinate_job_event_type),
       j.run_started_at + e.offset_s * interval '1 second'
  FROM procrastinate_jobs AS j,
       LATERAL (VALUES (0, 'deferred', -0.5),
                       (1, CASE WHEN j.status IN ('succeeded', 'failed') THEN 'started' END, 0.0),
                       (2, CASE WHEN j.status IN ('succeeded', 'failed', 'cancelled')
                                THEN CAST(j.status AS text) END, 0.2))
           AS e(n, type, offset_s)
 WHERE e.type IS NOT NULL
 ORDER BY j.id, e.n;
INSERT INTO task_results (job_id, task_name, queue_name, status, result, error, attempt,
                          started_at, finished_at, duration)
SELECT id, task_name, queue_name,
       CASE WHEN status = 'succeeded' THEN 'SUCCESS' ELSE 'FAILURE' END,
       NULL, CASE WHEN status = 'failed' THEN 'PermanentError: bench failure ' || id END,
       1, run_started_at, run_started_at + interval '0.2 second', 0.2
  FROM procrastinate_jobs WHERE id %% 2 = 0 AND status IN ('succeeded', 'failed');
SET session_replication_role = DEFAULT;
"""

#: Pages timed: (label, path).
PAGES = (
    ("jobs, newest", "/jobs"),
    ("jobs, page 100 deep", "/jobs?before={deep}"),
    ("jobs, status=failed", "/jobs?status=failed"),
    ("jobs, queue=mail", "/jobs?queue=mail"),
    ("jobs, task=bench.task_7", "/jobs?task=bench.task_7"),
    ("jobs, failed in task 7", "/jobs?status=failed&task=bench.task_7"),
    ("jobs, since 2h", "/jobs?since=2h"),
    ("jobs, 12h..11h ago", "/jobs?since=12h&until=11h"),
    ("jobs, id search", "/jobs?q={deep}"),
    ("jobs, argument search", "/jobs?q={needle}"),
    ("overview", "/"),
    ("metrics", "/metrics"),
)


def fill(url: str, rows: int) -> float:
    """Fill the database with ``rows`` jobs; return the seconds it took."""
    import psycopg

    started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as connection:
        for statement in filter(str.strip, FILL.split(";\n")):
            connection.execute(statement, {"rows": rows, "queues": list(queues.ALL_QUEUES)})
        connection.execute("VACUUM ANALYZE procrastinate_jobs")
        connection.execute("VACUUM ANALYZE procrastinate_events")
        connection.execute("VACUUM ANALYZE task_results")
    return time.perf_counter() - started


def catch_up(url: str) -> float:
    """Fold every event into the metric totals (as the scrapes of a day would have done);
    return the seconds it took."""
    import psycopg

    store = Store(url)
    started = time.perf_counter()
    try:
        with psycopg.connect(url, autocommit=True) as connection:
            while True:
                metrics.fold(store, budget=60)
                folded, newest = connection.execute(
                    "SELECT folded_upto, (SELECT max(id) FROM procrastinate_events)"
                    " FROM dashboard_metric_state"
                ).fetchone()
                if folded >= newest:
                    return time.perf_counter() - started
                time.sleep(1.1)  # the candidate settles
    finally:
        store.close()


def timed(base: str, path: str, requests: int) -> list[float]:
    """Milliseconds of ``requests`` GETs of ``path`` (after one warm-up)."""
    figures = []
    for n in range(requests + 1):
        started = time.perf_counter()
        with urllib.request.urlopen(base + path, timeout=60) as response:
            response.read()
            assert response.status == 200, (path, response.status)
        if n:
            figures.append((time.perf_counter() - started) * 1000)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=30)
    args = parser.parse_args()
    with harness.database() as url:
        engine = schema.engine_for(url)
        try:
            schema.upgrade(engine)
        finally:
            engine.dispose()
        print(f"filled {args.rows:,} jobs in {fill(url, args.rows):.0f} s")
        print(f"folded the {args.rows * 3:,}-odd events into the counters in {catch_up(url):.0f} s")
        app = create_app(url, Settings())
        server = DashboardServer(app, host="127.0.0.1", port=0)
        server.start()
        try:
            base = f"http://127.0.0.1:{server.port}"
            values = {"deep": args.rows - 100 * job_pages.PAGE_SIZE, "needle": "5f3e"}
            print(f"{'page':32} {'median ms':>10} {'p95 ms':>8}  (of {args.requests} requests)")
            worst = 0.0
            for label, path in PAGES:
                figures = sorted(timed(base, path.format(**values), args.requests))
                median = statistics.median(figures)
                p95 = figures[max(0, round(len(figures) * 0.95) - 1)]
                if label.startswith("jobs"):
                    worst = max(worst, p95)
                print(f"{label:32} {median:10.1f} {p95:8.1f}")
            verdict = "met" if worst < TARGET_MS else "NOT met"
            print(f"jobs page: worst p95 {worst:.1f} ms; target {TARGET_MS:.0f} ms {verdict}")
        finally:
            server.stop()
            app.config["store"].close()


if __name__ == "__main__":
    main()
