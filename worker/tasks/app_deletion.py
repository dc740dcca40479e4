"""App and account deletion tasks, with Dify's names and arguments, and the deletion app code
calls.

App code deletes an app through :func:`delete_app` (or ``worker.api.delete_app``) in its own
session: the row goes and ``remove_app_and_related_data_task`` is deferred in the same
transaction. The task holds ``app:<id>:annotation`` (no annotation job of the app runs
meanwhile), never strips a live app, and deletes in batches of at most 1,000 rows, each a short
transaction that also records its progress (``manage.py jobs show``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import orm

from worker import queues, runtime
from worker.domain import account_closure, billing
from worker.domain.app_deletion import service
from worker.jobs import Retry, current_job, task
from worker.jobs.uow import UnitOfWork
from worker.tasks.mail import send_deletion_success_task

#: A live app (its deletion not committed yet) or a failing batch: 5 retries, 10 s doubling to
#: 2 minutes (about 4.5 minutes in all), then the job fails and stays visible; a re-run resumes.
APP_DELETION_RETRY = Retry(max_retries=5, default_retry_delay=10, backoff=2, max_delay=120)
#: The billing service unreachable or answering 5xx: 5 retries, 30 s doubling to 10 minutes.
ACCOUNT_DELETION_RETRY = Retry(max_retries=5, default_retry_delay=30, backoff=2, max_delay=600)


@task(
    name="app_deletion.remove_app_and_related_data",
    queue=queues.APP_DELETION,
    retry=APP_DELETION_RETRY,
    lock="app:{app_id}:annotation",
    queueing_lock="app:{app_id}:delete",
)
def remove_app_and_related_data_task(
    tenant_id: str, app_id: str, *, uow: UnitOfWork
) -> dict[str, int]:
    """Delete what a deleted app left (rows, annotation vectors, message files); app lock;
    a re-run resumes where the last one stopped."""
    return service.remove_app_data(
        uow, runtime.current().pipeline.storage, tenant_id, app_id, job_id=_job_id()
    )


@task(
    name="app_deletion.delete_account",
    queue=queues.DEFAULT,
    retry=ACCOUNT_DELETION_RETRY,
    lock="account:{account_id}",
    queueing_lock="account:{account_id}:delete",
)
def delete_account_task(account_id: str, *, uow: UnitOfWork) -> dict[str, Any]:
    """Close an account (billing service, or locally) and defer its mail in the same final
    transaction; account lock; a closed or missing account is left as it is."""
    settings = runtime.current().settings
    mail = send_deletion_success_task
    if not settings.billing_enabled:
        return account_closure.close_account(uow, account_id, billing=None, mail=mail)
    with billing.connect(settings) as client:
        return account_closure.close_account(uow, account_id, billing=client, mail=mail)


def _job_id() -> int | None:
    try:
        return current_job().id
    except RuntimeError:  # called directly, not as a job: no progress to record
        return None


def delete_app(session: orm.Session, app_id: str) -> bool:
    """Delete an app and defer the deletion of its data, in ``session``'s transaction."""
    return service.delete_app(session, app_id, remove=remove_app_and_related_data_task)
