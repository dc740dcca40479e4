"""Every private part of procrastinate 3.10.0 (pinned) that this task layer relies on.

Our worker (``worker.jobs.runner``) does not use procrastinate's ``Worker``: it fetches, ends and
recovers jobs with SQL of its own (``worker.jobs.state``) on procrastinate's tables. What remains
of procrastinate's internals is listed here, each guarded by ``tests/unit/test_pinned.py``, which
fails if the pinned version changes it:

1. ``App._register_task``: how ``@task`` registers a task object built by us.
2. The ``procrastinate_jobs`` table and its status enum, the ``procrastinate_workers`` table and
   its columns, read and written by ``worker/domain/sql``.
3. The NOTIFY channels and payload of its insert trigger, which our listener follows and the
   recovery sweep imitates: ``procrastinate_queue_v1#<queue>``,
   ``{"type": "job_inserted", "job_id": ...}``.
4. ``PsycopgConnector.execute_query_*_with_connection`` (overridden by
   ``worker.jobs.connector.TxAwarePsycopgConnector`` for sync connections).
"""

from __future__ import annotations

from typing import Any

import procrastinate

#: The channel procrastinate notifies for a queue (``procrastinate_notify_queue_job_inserted_v1``).
QUEUE_CHANNEL = "procrastinate_queue_v1#{queue}"
#: ``type`` of the notification sent when a job is inserted.
JOB_INSERTED = "job_inserted"
#: Job statuses of the ``procrastinate_job_status`` enum.
STATUSES = ("todo", "doing", "succeeded", "failed", "cancelled", "aborting", "aborted")


def register_task(app: procrastinate.App, task: Any) -> None:
    """Register a task object we built (``App._register_task``, private in 3.10.0)."""
    app._register_task(task)


def channel(queue: str) -> str:
    """The LISTEN channel of ``queue``."""
    return QUEUE_CHANNEL.format(queue=queue)
