"""Retention (queue ``default``): delete finished jobs, outcomes, deliveries and ticks in batches.

Scheduled hourly (``worker.maintenance.schedule``); ``manage.py jobs prune`` runs the same service.
"""

from __future__ import annotations

from worker import queues, runtime
from worker.jobs import Retry, task
from worker.jobs.uow import UnitOfWork
from worker.maintenance import retention

#: A prune fails only on database errors; it resumes where it stopped, and the next hourly run
#: does the same work anyway: two retries, a minute apart.
PRUNE_RETRY = Retry(max_retries=2, default_retry_delay=60, backoff=1)


@task(
    name="maintenance.prune_finished_jobs",
    queue=queues.DEFAULT,
    retry=PRUNE_RETRY,
    lock="maintenance:prune",
    queueing_lock="maintenance:prune",
)
def prune_finished_jobs_task(*, uow: UnitOfWork) -> dict[str, int]:
    """Prune what retention no longer keeps, in short batches; one at a time; re-running deletes
    only what is still eligible."""
    policy = retention.RetentionPolicy.from_settings(runtime.current().settings)
    return retention.prune(uow, policy).rows
