"""``manage.py schedule`` and ``manage.py jobs prune`` through the real command line."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from tests.conftest import Manage
from tests.retention_rows import DAY, HOUR, make_job, make_tick, scalars
from worker import db, runtime


@pytest.fixture(autouse=True)
def task_layer(database_url: str) -> Iterator[None]:
    runtime.setup(database_url)
    yield
    runtime.teardown()


def test_schedule_lists_every_periodic_job_and_no_leader(manage: Manage, database_url: str) -> None:
    make_tick("recover_stuck_documents", HOUR)

    done = manage(
        "schedule",
        env={"DATABASE_URL": database_url, "ENABLE_CHECK_UPGRADABLE_PLUGIN_TASK": "false"},
    )

    assert done.returncode == 0, done.stderr
    lines = {line.split()[0]: line for line in done.stdout.splitlines()[1:4]}
    assert sorted(lines) == [
        "check_upgradable_plugin_task", "prune_finished_jobs", "recover_stuck_documents"
    ]  # fmt: skip
    assert lines["check_upgradable_plugin_task"].split()[1] == "no"
    assert "cron minute=*/15 (UTC)" in lines["check_upgradable_plugin_task"]
    sweep = lines["recover_stuck_documents"]
    assert sweep.split()[1:5] == ["yes", "every", "300", "s"]
    assert " deferred " in sweep and " UTC" in sweep
    assert " - " in lines["prune_finished_jobs"], "never fired"
    assert (
        "check_upgradable_plugin_task is off: needs ENABLE_CHECK_UPGRADABLE_PLUGIN_TASK and "
        "MARKETPLACE_ENABLED" in done.stdout
    )
    assert "leader: none" in done.stdout


def test_schedule_names_the_leader(manage: Manage, database_url: str) -> None:
    with psycopg.connect(
        db.libpq_url(database_url),
        autocommit=True,
        application_name="pg-task-layer scheduler pid=4242 host=box-1",
    ) as holder:
        assert holder.execute("SELECT pg_try_advisory_lock(7368044, 0)").fetchone() == (True,)

        done = manage("schedule", env={"DATABASE_URL": database_url})

    assert done.returncode == 0, done.stderr
    assert "leader: pid 4242 on box-1, connected since " in done.stdout


def test_jobs_prune_dry_run_counts_and_deletes_nothing(manage: Manage, database_url: str) -> None:
    old = [make_job("succeeded", 2 * DAY, outcome="SUCCESS") for _ in range(3)]
    recent = make_job("succeeded", HOUR, outcome="SUCCESS")
    env = {"DATABASE_URL": database_url}

    dry = manage("jobs", "prune", "--dry-run", env=env)

    assert dry.returncode == 0, dry.stderr
    assert "procrastinate_jobs            3 would delete" in dry.stdout
    assert "procrastinate_events          9 would delete" in dry.stdout
    assert "task_results                  3 would delete" in dry.stdout
    assert sorted(scalars("SELECT id FROM procrastinate_jobs")) == sorted([*old, recent])

    done = manage("jobs", "prune", "--batch-size", "2", env=env)

    assert done.returncode == 0, done.stderr
    assert "procrastinate_events        2 deleted (2 so far)" in done.stdout
    assert "procrastinate_jobs            3 deleted" in done.stdout
    assert "transaction(s) of at most 2 rows" in done.stdout
    assert scalars("SELECT id FROM procrastinate_jobs") == [recent]


def test_jobs_prune_refuses_batches_over_a_thousand(manage: Manage) -> None:
    done = manage("jobs", "prune", "--batch-size", "1001")

    assert done.returncode == 2
    assert "batch size 1001 is outside 1..1000" in done.stderr
