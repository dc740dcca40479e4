"""Mail tasks (queue ``mail``), with Dify's names and arguments.

Each sends one message through ``worker.domain.mail``: the delivery is recorded per (job,
recipient), so a re-run never sends a message recorded as sent. Transient refusals (connection
errors, SMTP 4xx, HTTP 429/5xx) retry with backoff; permanent ones fail at once with the reason.
No lock: messages are independent. Codes and tokens are secret arguments: masked in logs and in
the jobs table once the job has ended.
"""

from __future__ import annotations

from worker import queues, runtime
from worker.domain import mail
from worker.domain.errors import PermanentError
from worker.domain.mail_templates import EmailType
from worker.jobs import Retry, current_job, task, will_retry
from worker.jobs.uow import UnitOfWork

#: Transient refusals: 5 retries, 30 s doubling up to 30 min.
MAIL_RETRY = Retry(max_retries=5, default_retry_delay=30, backoff=2, max_delay=1800)


def _send(
    uow: UnitOfWork, email_type: EmailType, language: str | None, to: str, **context: object
) -> dict[str, str | None]:
    job = current_job()
    assert job.id is not None
    return mail.send_templated(
        uow, runtime.current().mail, job_id=job.id, email_type=email_type, language=language,
        to=to, context=context, retrying=will_retry,
    )  # fmt: skip


@task(name="mail.invite_member", queue=queues.MAIL, retry=MAIL_RETRY, secret_args=("token",))
def send_invite_member_mail_task(
    language: str, to: str, token: str, inviter_name: str, workspace_name: str, *, uow: UnitOfWork
) -> dict[str, str | None]:
    """Invitation with the activation link."""
    url = runtime.current().mail.link(f"/activate?token={token}")
    return _send(
        uow, EmailType.INVITE_MEMBER, language, to,
        inviter_name=inviter_name, workspace_name=workspace_name, url=url,
    )  # fmt: skip


@task(name="mail.reset_password", queue=queues.MAIL, retry=MAIL_RETRY, secret_args=("code",))
def send_reset_password_mail_task(
    language: str, to: str, code: str, *, uow: UnitOfWork
) -> dict[str, str | None]:
    """Password reset code."""
    return _send(uow, EmailType.RESET_PASSWORD, language, to, code=code)


@task(name="mail.reset_password_when_account_not_exist", queue=queues.MAIL, retry=MAIL_RETRY)
def send_reset_password_mail_task_when_account_not_exist(
    language: str, to: str, is_allow_register: bool, *, uow: UnitOfWork
) -> dict[str, str | None]:
    """Reset asked for an unknown address: invite to sign up, or just say so."""
    if is_allow_register:
        sign_up_url = runtime.current().mail.link("/signup")
        return _send(
            uow,
            EmailType.RESET_PASSWORD_WHEN_ACCOUNT_NOT_EXIST,
            language,
            to,
            sign_up_url=sign_up_url,
        )
    return _send(uow, EmailType.RESET_PASSWORD_WHEN_ACCOUNT_NOT_EXIST_NO_REGISTER, language, to)


@task(name="mail.change_mail", queue=queues.MAIL, retry=MAIL_RETRY, secret_args=("code",))
def send_change_mail_task(
    language: str, to: str, code: str, phase: str, *, uow: UnitOfWork
) -> dict[str, str | None]:
    """Code confirming the current (``old_email``) or the new (``new_email``) address."""
    phases = {"old_email": EmailType.CHANGE_EMAIL_OLD, "new_email": EmailType.CHANGE_EMAIL_NEW}
    if phase not in phases:
        raise PermanentError(f"phase {phase!r} is not old_email or new_email")
    return _send(uow, phases[phase], language, to, code=code)


@task(name="mail.change_mail_completed", queue=queues.MAIL, retry=MAIL_RETRY)
def send_change_mail_completed_notification_task(
    language: str, to: str, *, uow: UnitOfWork
) -> dict[str, str | None]:
    """Notice that the login address changed."""
    return _send(uow, EmailType.CHANGE_EMAIL_COMPLETED, language, to, email=to)


@task(name="mail.email_code_login", queue=queues.MAIL, retry=MAIL_RETRY, secret_args=("code",))
def send_email_code_login_mail_task(
    language: str, to: str, code: str, *, uow: UnitOfWork
) -> dict[str, str | None]:
    """Login code."""
    return _send(uow, EmailType.EMAIL_CODE_LOGIN, language, to, code=code)


@task(
    name="mail.owner_transfer_confirm", queue=queues.MAIL, retry=MAIL_RETRY, secret_args=("code",)
)
def send_owner_transfer_confirm_task(
    language: str, to: str, code: str, workspace: str, *, uow: UnitOfWork
) -> dict[str, str | None]:
    """Code confirming a workspace ownership transfer."""
    return _send(
        uow, EmailType.OWNER_TRANSFER_CONFIRM, language, to, code=code, WorkspaceName=workspace
    )


@task(name="mail.owner_transfer_old_notify", queue=queues.MAIL, retry=MAIL_RETRY)
def send_old_owner_transfer_notify_email_task(
    language: str, to: str, workspace: str, new_owner_email: str, *, uow: UnitOfWork
) -> dict[str, str | None]:
    """Notice to the former owner."""
    return _send(
        uow, EmailType.OWNER_TRANSFER_OLD_NOTIFY, language, to,
        WorkspaceName=workspace, NewOwnerEmail=new_owner_email,
    )  # fmt: skip


@task(name="mail.owner_transfer_new_notify", queue=queues.MAIL, retry=MAIL_RETRY)
def send_new_owner_transfer_notify_email_task(
    language: str, to: str, workspace: str, *, uow: UnitOfWork
) -> dict[str, str | None]:
    """Notice to the new owner."""
    return _send(uow, EmailType.OWNER_TRANSFER_NEW_NOTIFY, language, to, WorkspaceName=workspace)


@task(name="mail.deletion_success", queue=queues.MAIL, retry=MAIL_RETRY)
def send_deletion_success_task(
    to: str, language: str = "en-US", *, uow: UnitOfWork
) -> dict[str, str | None]:
    """Notice that the account was deleted."""
    return _send(uow, EmailType.ACCOUNT_DELETION_SUCCESS, language, to, email=to)


@task(
    name="mail.account_deletion_verification",
    queue=queues.MAIL,
    retry=MAIL_RETRY,
    secret_args=("code",),
)
def send_account_deletion_verification_code(
    to: str, code: str, language: str = "en-US", *, uow: UnitOfWork
) -> dict[str, str | None]:
    """Code confirming an account deletion."""
    return _send(uow, EmailType.ACCOUNT_DELETION_VERIFICATION, language, to, code=code)
