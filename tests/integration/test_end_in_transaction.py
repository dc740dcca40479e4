"""A task that writes ends its run in its own transaction, and that transaction commits in the
same round trip as the end (``state.succeed_and_commit``): what the task wrote, flushed or not,
commits with the job's end, or nothing does."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from procrastinate.jobs import Job

from tests.inprocess import drain
from worker import db, queues, runtime
from worker.domain.models import Tenant
from worker.jobs import NO_RETRY, SUCCESS, AsyncResult, execution, state, task
from worker.jobs.uow import UnitOfWork

#: What the after-commit callbacks of the tasks below saw, in order.
COMMITTED: list[str] = []

#: A result no inlining may alter: quotes, a backslash, placeholders of every style, dollar
#: quotes, a statement separator, text outside ASCII.
AWKWARD = {
    "text": "it's a \\ 'quoted' %s %(x)s :job_id $1 $$ ; COMMIT; --",
    "文档": ["分段", 1.5, None, True],
}


@task(name="tests.end_in_tx.add_unflushed", queue=queues.DEFAULT, retry=NO_RETRY)
def add_unflushed(name: str, *, uow: UnitOfWork) -> None:
    """Adds a row by the ORM, never flushed, and returns nothing (no outcome row)."""
    uow.session.add(Tenant(name=name))
    uow.after_commit(lambda: COMMITTED.append(name))


@task(name="tests.end_in_tx.savepoint_left_open", queue=queues.DEFAULT, retry=NO_RETRY)
def savepoint_left_open(name: str, *, uow: UnitOfWork) -> None:
    """Writes, then writes again in a savepoint it never closes."""
    uow.session.add(Tenant(name=name))
    uow.session.begin_nested()
    uow.session.add(Tenant(name=f"{name}-inner"))


@task(name="tests.end_in_tx.awkward", queue=queues.DEFAULT, retry=NO_RETRY)
def awkward(name: str, *, uow: UnitOfWork) -> dict[str, Any]:
    uow.session.add(Tenant(name=name))
    return AWKWARD


@task(name="tests.end_in_tx.secret", queue=queues.DEFAULT, retry=NO_RETRY, secret_args=("code",))
def with_secret(name: str, code: str, *, uow: UnitOfWork) -> None:
    uow.session.add(Tenant(name=f"{name}:{len(code)}"))


@pytest.fixture(autouse=True)
def task_layer(database_url: str) -> Iterator[runtime.Runtime]:
    COMMITTED.clear()
    yield runtime.setup(database_url)
    runtime.teardown()


def tenants(name: str) -> int:
    with db.session_scope(new=True) as session:
        return session.execute(sa.select(sa.func.count()).where(Tenant.name == name)).scalar_one()


def job_row(job_id: int) -> Any:
    with db.session_scope(new=True) as session:
        return session.execute(
            sa.text("SELECT * FROM procrastinate_jobs WHERE id = :id"), {"id": job_id}
        ).one()


def same_transaction(name: str, job_id: int) -> bool:
    """Whether tenant ``name`` was written by the transaction that ended job ``job_id`` (the
    job's own row is written again later: its worker's row goes when the worker stops)."""
    with db.session_scope(new=True) as session:
        return session.execute(
            sa.text(
                "SELECT (SELECT xmin::text FROM tenants WHERE name = :name)"
                " = (SELECT xmin::text FROM procrastinate_events"
                "     WHERE job_id = :id AND type = 'succeeded')"
            ),
            {"name": name, "id": job_id},
        ).scalar_one()


def outcome_rows(job_id: int) -> int:
    with db.session_scope(new=True) as session:
        return session.execute(
            sa.text("SELECT count(*) FROM task_results WHERE job_id = :id"), {"id": job_id}
        ).scalar_one()


def test_unflushed_writes_commit_with_the_end_and_after_commit_runs_once() -> None:
    result = add_unflushed.delay("unflushed")

    drain([queues.DEFAULT])

    assert tenants("unflushed") == 1
    row = job_row(result.id)
    assert (row.status, row.attempts) == ("succeeded", 1)
    assert outcome_rows(result.id) == 0, "nothing returned: no outcome row"
    assert COMMITTED == ["unflushed"], "after the commit, once"
    assert same_transaction("unflushed", result.id), "the row and the end: one transaction"


def test_a_fenced_run_that_returns_nothing_rolls_back_and_the_pool_stays_usable() -> None:
    result = add_unflushed.delay("fenced")
    drain([queues.DEFAULT])
    row = job_row(result.id)
    # a second run of the finished job (e.g. one that started before the first one committed)
    stale = state.Run(job=Job.from_row(dict(row._mapping)), run=row.runs)
    COMMITTED.clear()

    assert execution.run_job(stale) is None, "fenced off: nothing to write"

    assert tenants("fenced") == 1, "the stale run's row rolled back with its end"
    assert COMMITTED == [], "no after-commit action for a transaction that rolled back"
    after = job_row(result.id)
    assert (after.status, after.attempts) == ("succeeded", 1)
    # the connection the fenced run used went back to the pool in a clean state
    for name in ("next-1", "next-2", "next-3"):
        add_unflushed.delay(name)
    drain([queues.DEFAULT])
    assert [tenants(name) for name in ("next-1", "next-2", "next-3")] == [1, 1, 1]


def test_a_savepoint_left_open_is_released_and_commits_with_the_end() -> None:
    result = savepoint_left_open.delay("nested")

    drain([queues.DEFAULT])

    assert result.status == SUCCESS
    assert (tenants("nested"), tenants("nested-inner")) == (1, 1)
    assert same_transaction("nested", result.id)  # (the inner row has its savepoint's xid)


def test_a_result_is_kept_exactly_whatever_its_characters() -> None:
    result = awkward.delay("awkward")

    drain([queues.DEFAULT])

    assert result.status == SUCCESS
    assert AsyncResult(result.id).get(timeout=1) == AWKWARD
    assert tenants("awkward") == 1


def test_secret_arguments_are_erased_by_the_end_committed_with_the_writes() -> None:
    result = with_secret.delay("secret", code="271828")

    drain([queues.DEFAULT])

    assert tenants("secret:6") == 1
    assert same_transaction("secret:6", result.id)
    row = job_row(result.id)
    assert row.status == "succeeded"
    assert row.args["code"] != "271828", "the secret is gone from the jobs table"
    assert row.args["name"] == "secret"
