"""Ops trace tasks (queue ``ops_trace``), with Dify's name and argument.

``process_trace_tasks({"file_id", "app_id"})`` delivers the payload
``ops_trace/{app_id}/{file_id}.json`` to the app's Langfuse, synchronously: the job succeeds only
when Langfuse accepted every event. ``sweep_trace_payloads_task`` (hourly, from the scheduler)
deletes payloads whose outcome is final and old delivery records.
"""

from __future__ import annotations

from typing import Any

from worker import queues, runtime
from worker.domain import ops_trace
from worker.domain.ops_trace import langfuse
from worker.jobs import Retry, current_job, task, will_retry
from worker.jobs.uow import UnitOfWork

#: Unreachable provider, timeouts, 429 and 5xx: 5 retries, 5 s doubling up to a minute.
TRACE_RETRY = Retry(max_retries=5, default_retry_delay=5, backoff=2, max_delay=60)
#: The sweep reads and deletes in batches; the next hour's run does the same work anyway.
SWEEP_RETRY = Retry(max_retries=2, default_retry_delay=60, backoff=1)


@task(name="ops_trace.process_trace", queue=queues.OPS_TRACE, retry=TRACE_RETRY)
def process_trace_tasks(file_info: dict[str, Any], *, uow: UnitOfWork) -> dict[str, Any]:
    """Send one trace payload to the app's provider and record it; no lock; a re-run sends the
    same event ids (Langfuse keeps one of each) or finds the delivery final."""
    current = runtime.current()
    return ops_trace.process(
        uow,
        current.pipeline.storage,
        langfuse.shared(current.settings.http_timeout),
        file_info,
        job_id=_job_id(),
        retrying=will_retry,
    )


@task(
    name="ops_trace.sweep_payloads",
    queue=queues.OPS_TRACE,
    retry=SWEEP_RETRY,
    lock="ops_trace:sweep",
    queueing_lock="ops_trace:sweep",
)
def sweep_trace_payloads_task(*, uow: UnitOfWork) -> dict[str, int]:
    """Delete payloads whose delivery is final (or orphaned) and old deliveries; one at a time;
    re-running deletes only what is still eligible."""
    policy = ops_trace.SweepPolicy(task_name=process_trace_tasks.name)
    return ops_trace.sweep(uow, runtime.current().settings.storage_root, policy)


def _job_id() -> int | None:
    try:
        return current_job().id
    except RuntimeError:  # called directly, not as a job
        return None
