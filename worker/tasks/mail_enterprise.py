"""The enterprise inner mail (queue ``mail``): a caller-written body to several recipients.

Each recipient gets a separate message with its own delivery record; a re-run skips those
recorded as sent. No lock: messages are independent.
"""

from __future__ import annotations

from typing import Any

from worker import queues, runtime
from worker.domain import mail, mail_inner
from worker.jobs import current_job, task, will_retry
from worker.jobs.uow import UnitOfWork
from worker.tasks.mail import MAIL_RETRY


@task(name="mail.inner_email", queue=queues.MAIL, retry=MAIL_RETRY)
def send_inner_email_task(
    to: list[str], subject: str, body: str, substitutions: dict[str, Any], *, uow: UnitOfWork
) -> dict[str, dict[str, str | None]]:
    """Render the body (sandboxed, time-limited) and send it to each recipient once."""
    current = runtime.current()
    html = mail_inner.render_body(
        body,
        substitutions,
        mode=current.settings.mail_templating_mode,
        timeout=current.settings.mail_templating_timeout,
    )
    job = current_job()
    assert job.id is not None
    return mail.send_raw(
        uow, current.mail, job_id=job.id, recipients=to, subject=subject, html=html,
        retrying=will_retry,
    )  # fmt: skip


#: The seed era's name of the same task (``mail_enterprise_task.send_enterprise_email_task``, same
#: arguments): ported code keeps calling it, ``manage.py defer`` accepts it.
send_enterprise_email_task = send_inner_email_task
