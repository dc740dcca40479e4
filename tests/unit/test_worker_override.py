"""Our worker overrides private parts of procrastinate 3.10.0: fail loudly if they change."""

from __future__ import annotations

import inspect

import procrastinate
import procrastinate.worker

from worker.app import TaskLayerApp
from worker.jobs.worker import TaskLayerWorker


def test_persist_job_status_signature_is_the_one_we_override() -> None:
    ours = inspect.signature(TaskLayerWorker._persist_job_status)
    theirs = inspect.signature(procrastinate.worker.Worker._persist_job_status)

    assert list(ours.parameters) == list(theirs.parameters)


def test_workers_keep_the_abort_bookkeeping_we_clear() -> None:
    source = inspect.getsource(procrastinate.worker.Worker._persist_job_status)

    assert "self._job_ids_to_abort.pop(job.id, None)" in source


def test_app_builds_workers_through_the_method_we_override() -> None:
    source = inspect.getsource(procrastinate.App.run_worker_async)

    assert "self._worker(**kwargs)" in source
    assert TaskLayerApp._worker is not procrastinate.App._worker
