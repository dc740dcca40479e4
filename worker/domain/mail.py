"""Sending Dify's e-mails with a delivery record per message.

Each message goes through three short steps, keyed by (job id, recipient):

1. claim: the delivery row is written ``sending`` (attempts + 1) in a short step of the job's
   unit of work; a row already ``sent`` means a redelivered job: nothing is sent again;
2. send: render and hand over to the backend, with no transaction open;
3. record: ``sent`` with the provider's id or the SMTP reply, through the job's session (it
   commits with the job's outcome; for a job with several recipients, each in a step of its
   own); a refusal is recorded ``retrying`` (the job will run again) or ``failed`` in a step,
   then raised so the job retries or fails visibly.

A crash between 2 and 3 can send a message twice: e-mail is at least once. Mail not configured
(``MAIL_TYPE`` unset) fails the job with that reason instead of pretending to succeed.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert

from worker.domain.errors import DomainError, PermanentError
from worker.domain.mail_templates import EmailType, MailRenderer, resolve_language
from worker.domain.mailer import Mailer, Message, Receipt, build, check_address, check_header
from worker.domain.models import DeliveryStatus, MailDelivery
from worker.domain.uow import UnitOfWork

#: Whether the job will run again after a failure (``worker.jobs.will_retry`` in a job).
Retrying = Callable[[BaseException], bool]


def _never(exc: BaseException) -> bool:
    return False


logger = logging.getLogger(__name__)


class MailNotConfigured(PermanentError):
    """Mail is not configured (MAIL_TYPE is unset): nothing can be sent."""


@dataclass(frozen=True, kw_only=True)
class MailService:
    """The configured backend, sender and templates (built once by the runtime)."""

    mailer: Mailer | None
    #: ``smtp``, ``resend`` or ``sendgrid`` (recorded on each delivery).
    backend: str
    sender: str
    renderer: MailRenderer
    #: Dify's ``CONSOLE_WEB_URL``: base of the links in mails.
    console_web_url: str

    def link(self, path: str) -> str:
        """An absolute console link, e.g. ``link("/activate?token=...")``."""
        return f"{self.console_web_url}{path}"


def send_templated(
    uow: UnitOfWork,
    service: MailService,
    *,
    job_id: int,
    email_type: EmailType,
    language: str | None,
    to: str,
    context: Mapping[str, object],
    retrying: Retrying = _never,
) -> dict[str, str | None]:
    """Render ``email_type`` in the recipient's language and deliver it once.

    ``retrying`` says whether a refusal will be retried (recorded ``retrying``) or ends the job
    (``failed``).

    Raises
    ------
    MailNotConfigured, PermanentError, TransientError
        After recording the delivery as ``failed`` or ``retrying`` (when it got that far).
    """
    mailer = _configured(service)
    recipient = check_address(to)
    for name, value in context.items():
        if isinstance(value, str):
            check_header(value, name)  # names and workspaces reach subjects: no CR/LF at all
    rendered = service.renderer.render(email_type, language, {"to": recipient, **context})
    return deliver(
        uow,
        service,
        mailer,
        job_id=job_id,
        mail_type=email_type.value,
        language=rendered.language.value,
        message=Message(
            sender=service.sender, to=recipient, subject=rendered.subject, html=rendered.html
        ),
        retrying=retrying,
    )


def send_raw(
    uow: UnitOfWork,
    service: MailService,
    *,
    job_id: int,
    recipients: Sequence[str],
    subject: str,
    html: str,
    retrying: Retrying = _never,
) -> dict[str, dict[str, str | None]]:
    """Deliver a pre-rendered mail to each recipient separately (the enterprise inner mail).

    Raises
    ------
    PermanentError
        Before anything is sent, when a recipient or the subject is malformed.
    """
    mailer = _configured(service)
    checked = [check_address(r) for r in recipients]
    check_header(subject, "subject")
    if not checked:
        raise PermanentError("no recipient given")
    return {
        recipient: deliver(
            uow,
            service,
            mailer,
            job_id=job_id,
            mail_type=EmailType.ENTERPRISE_CUSTOM.value,
            language=resolve_language(None).value,
            message=Message(sender=service.sender, to=recipient, subject=subject, html=html),
            retrying=retrying,
            join_job=len(checked) == 1,
        )
        for recipient in checked
    }


def deliver(
    uow: UnitOfWork,
    service: MailService,
    mailer: Mailer,
    *,
    job_id: int,
    mail_type: str,
    language: str,
    message: Message,
    retrying: Retrying = _never,
    join_job: bool = True,
) -> dict[str, str | None]:
    """Claim, send and record one message (see the module docstring); ``join_job=False`` when
    the job sends several, so that each ``sent`` record commits at once."""
    build(message)  # every header checked before anything is recorded or sent
    previous = _claim(uow, service, job_id, mail_type, language, message.to)
    if previous is not None:
        logger.info(
            "mail %s of job %s was already sent: not sending it again",
            mail_type,
            job_id,
            extra={"action": "mail_already_sent", "job_id": job_id, "mail_type": mail_type},
        )
        return previous
    try:
        receipt = mailer.send(message)
    except DomainError as exc:
        _record_refusal(uow, job_id, message.to, exc, retried=retrying(exc))
        raise
    _record_sent(uow, job_id, message.to, receipt, join_job=join_job)
    logger.info(
        "mail %s of job %s sent through %s",
        mail_type,
        job_id,
        service.backend,
        extra={"action": "mail_sent", "job_id": job_id, "mail_type": mail_type},
    )
    return {"status": DeliveryStatus.SENT.value, "message_id": receipt.message_id}


def _configured(service: MailService) -> Mailer:
    if service.mailer is None:
        raise MailNotConfigured("mail is not configured: MAIL_TYPE is unset, nothing was sent")
    return service.mailer


def _claim(
    uow: UnitOfWork,
    service: MailService,
    job_id: int,
    mail_type: str,
    language: str,
    recipient: str,
) -> dict[str, str | None] | None:
    """Mark the delivery ``sending``; return the recorded receipt if it was already sent."""
    with uow.step() as session:
        statement = insert(MailDelivery).values(
            job_id=job_id,
            mail_type=mail_type,
            recipient=recipient,
            language=language,
            backend=service.backend,
            status=DeliveryStatus.SENDING,
            attempts=1,
        )
        session.execute(
            statement.on_conflict_do_update(
                index_elements=[MailDelivery.job_id, MailDelivery.recipient],
                set_={
                    "status": sa.case(
                        (MailDelivery.status == DeliveryStatus.SENT, MailDelivery.status),
                        else_=DeliveryStatus.SENDING,
                    ),
                    "attempts": MailDelivery.attempts + 1,
                },
            )
        )
        row = session.scalars(
            sa.select(MailDelivery).where(
                MailDelivery.job_id == job_id, MailDelivery.recipient == recipient
            )
        ).one()
        if row.status is DeliveryStatus.SENT:
            return {"status": row.status.value, "message_id": row.provider_message_id}
    return None


def _record_sent(
    uow: UnitOfWork, job_id: int, recipient: str, receipt: Receipt, *, join_job: bool
) -> None:
    # A single message's record goes through the job's session (it commits with the job's
    # outcome); with several recipients each record commits at once, or a later refusal would
    # roll the earlier ones back and they would be sent again.
    update = (
        sa.update(MailDelivery)
        .where(MailDelivery.job_id == job_id, MailDelivery.recipient == recipient)
        .values(
            status=DeliveryStatus.SENT,
            provider_message_id=receipt.message_id,
            reply=receipt.reply,
            error=None,
            sent_at=datetime.datetime.now(datetime.UTC),
        )
    )
    if join_job:
        uow.session.execute(update)
        return
    with uow.step() as session:
        session.execute(update)


def _record_refusal(
    uow: UnitOfWork, job_id: int, recipient: str, exc: DomainError, *, retried: bool
) -> None:
    status = DeliveryStatus.RETRYING if retried else DeliveryStatus.FAILED
    uow.rollback()  # nothing uncommitted of this job goes out with the refusal's record
    with uow.step() as session:
        session.execute(
            sa.update(MailDelivery)
            .where(MailDelivery.job_id == job_id, MailDelivery.recipient == recipient)
            .values(status=status, error=str(exc))
        )
    logger.warning(
        "mail of job %s to a recipient was refused: %s",
        job_id,
        exc,
        extra={"action": "mail_refused", "job_id": job_id, "status": status.value},
    )
