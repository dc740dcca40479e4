"""The indexing and maintenance tasks' retry policies and their ``retrying`` predicate."""

from __future__ import annotations

import pytest

from worker.app import app
from worker.domain.errors import PermanentError, TransientError
from worker.jobs import CeleryTask, will_retry
from worker.tasks import indexing  # the package registers every task


def indexing_tasks() -> list[CeleryTask]:
    found = [t for t in app.tasks.values() if t.name.startswith("indexing.")]
    assert all(isinstance(t, CeleryTask) for t in found)
    return found  # type: ignore[return-value]


def test_every_indexing_task_retries_transient_failures_and_not_permanent_ones() -> None:
    tasks = indexing_tasks()

    assert len(tasks) == 13
    for task in tasks:
        policy = task.retry_policy
        assert policy.max_retries > 0, task.name
        assert policy.retries(TransientError("HTTP 503")), task.name
        assert not policy.retries(PermanentError("HTTP 400")), task.name


@pytest.mark.parametrize("exc", [TransientError("HTTP 503"), ConnectionResetError()])
def test_nothing_is_retried_outside_a_job(exc: BaseException) -> None:
    assert not will_retry(exc)
