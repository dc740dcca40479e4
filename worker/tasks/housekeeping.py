"""Dify's periodic maintenance tasks, with Dify's names, scheduled by the in-worker scheduler
when their switches are on (``ENABLE_CLEAN_EMBEDDING_CACHE_TASK``, ...; see
``worker.maintenance.schedule``). Each holds its own lock: one run at a time, and a re-run does
only what is still to do.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import orm

from worker import queues, runtime
from worker.domain import housekeeping
from worker.domain.housekeeping import notify, queue_monitor, unused_datasets
from worker.jobs import AlreadyEnqueued, Retry, current_job, task, will_retry
from worker.jobs.uow import UnitOfWork
from worker.tasks.mail import MAIL_RETRY

#: Database hiccups: two retries a minute apart; the next run does the same work anyway.
HOUSEKEEPING_RETRY = Retry(max_retries=2, default_retry_delay=60, backoff=1)
EMBEDDING_LOCK = "housekeeping:embedding_cache"
DATASETS_LOCK = "housekeeping:unused_datasets"
#: One notice per workspace at a time, and at most one waiting.
NOTIFY_LOCK = "housekeeping:notify:{tenant_id}"


def _days_ago(days: int) -> datetime:
    return datetime.now(UTC) - timedelta(days=days)


@task(name="housekeeping.clean_embedding_cache", queue=queues.DATASET, retry=HOUSEKEEPING_RETRY,
      lock=EMBEDDING_LOCK, queueing_lock=EMBEDDING_LOCK)  # fmt: skip
def clean_embedding_cache_task(*, uow: UnitOfWork) -> int:
    """Delete cached embeddings older than PLAN_SANDBOX_CLEAN_DAY_SETTING days, in batches."""
    days = runtime.current().settings.plan_sandbox_clean_days
    return housekeeping.embedding_cache.clean(uow, before=_days_ago(days))


@task(name="housekeeping.clean_unused_datasets", queue=queues.DATASET, retry=HOUSEKEEPING_RETRY,
      lock=DATASETS_LOCK, queueing_lock=DATASETS_LOCK)  # fmt: skip
def clean_unused_datasets_task(*, uow: UnitOfWork) -> dict[str, int]:
    """Disable the documents of unused datasets, one transaction per dataset, keyset-paged."""
    current = runtime.current()
    settings = current.settings
    passes = [unused_datasets.Pass(days=settings.plan_sandbox_clean_days, write_logs=True)]
    if settings.billing_enabled:  # without billing there are no plans: no sandbox pass
        passes.append(
            unused_datasets.Pass(
                days=settings.plan_pro_clean_days, write_logs=False, plan=unused_datasets.SANDBOX
            )
        )
    return unused_datasets.clean(uow, current.pipeline, passes)


@task(name="housekeeping.mail_clean_document_notify", queue=queues.DATASET,
      retry=HOUSEKEEPING_RETRY, queueing_lock="housekeeping:clean_document_notify")  # fmt: skip
def mail_clean_document_notify_task(*, uow: UnitOfWork) -> list[str]:
    """Defer one notice per workspace with unnotified auto-disable logs; a re-run defers only
    what is not pending (queueing lock per workspace)."""
    deferred = []
    for tenant_id in notify.pending_tenants(uow.session):
        try:
            clean_document_notify_tenant_task.apply_async(
                args=[str(tenant_id)], session=uow.session
            )
            deferred.append(str(tenant_id))
        except AlreadyEnqueued:
            continue  # its notice is already waiting
    return deferred


@task(name="housekeeping.clean_document_notify_tenant", queue=queues.MAIL, retry=MAIL_RETRY,
      lock=NOTIFY_LOCK, queueing_lock=NOTIFY_LOCK)  # fmt: skip
def clean_document_notify_tenant_task(tenant_id: str, *, uow: UnitOfWork) -> dict[str, Any]:
    """Mail a workspace's owner its auto-disabled documents; the logs flip to notified with the
    mail's record."""
    current = runtime.current()
    skip = unused_datasets.SANDBOX if current.settings.billing_enabled else None
    return notify.notify_tenant(
        uow, current.mail, notify.parse_tenant(tenant_id), job_id=_job_id(),
        skip_plan=skip, retrying=will_retry,
    )  # fmt: skip


@task(name="housekeeping.queue_monitor", queue=queues.DEFAULT, retry=HOUSEKEEPING_RETRY,
      queueing_lock="housekeeping:queue_monitor")  # fmt: skip
def queue_monitor_task(*, uow: UnitOfWork) -> list[dict[str, Any]]:
    """Read every queue; alert (once while it holds) when one holds QUEUE_MONITOR_THRESHOLD."""
    threshold = runtime.current().settings.queue_monitor_threshold
    readings = queue_monitor.check(uow, threshold=threshold, alert=_alert)
    return [
        {"queue": r.queue, "waiting": r.waiting, "oldest_ready_seconds": r.oldest_ready_seconds}
        for r in readings
    ]


@task(name="housekeeping.queue_monitor_alert_mail", queue=queues.MAIL, retry=MAIL_RETRY)
def send_queue_monitor_alert_task(
    to: str, queue_name: str, queue_length: int, threshold: int, alert_time: str,
    oldest_ready_seconds: float | None = None, language: str | None = None, *, uow: UnitOfWork,
) -> dict[str, str | None]:  # fmt: skip
    """The queue monitor's alert to one operator."""
    return queue_monitor.send_alert(
        uow, runtime.current().mail, job_id=_job_id(), to=to, language=language,
        retrying=will_retry, queue_name=queue_name, queue_length=queue_length,
        threshold=threshold, alert_time=alert_time, oldest_ready_seconds=oldest_ready_seconds,
    )  # fmt: skip


def _alert(session: orm.Session, reading: queue_monitor.Reading) -> None:
    for to in runtime.current().settings.queue_monitor_alert_emails:
        send_queue_monitor_alert_task.apply_async(
            kwargs=queue_monitor.alert_arguments(reading, to), session=session
        )


def _job_id() -> int:
    job_id = current_job().id
    assert job_id is not None
    return job_id
