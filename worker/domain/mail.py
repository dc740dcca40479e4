"""Sending Dify's e-mails with a delivery record per message.

Each message goes through three short steps, keyed by (job id, recipient):

1. claim: the delivery row is written ``sending`` (attempts + 1) in its own transaction; a row
   already ``sent`` means a redelivered job: nothing is sent again;
2. send: render and hand over to the backend, outside any transaction;
3. record: ``sent`` with the provider's id or the SMTP reply, in the job's own transaction (it
   commits with the job's outcome; for a job with several recipients, each in its own); a
   refusal is recorded ``retrying`` (transient) or ``failed`` (permanent) in its own
   transaction, then raised so the job retries or fails visibly.

A crash between 2 and 3 can send a message twice: e-mail is at least once. Mail not configured
(``MAIL_TYPE`` unset) fails the job with that reason instead of pretending to succeed.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert

from worker import db
from worker.domain.errors import DomainError, PermanentError, TransientError
from worker.domain.mail_templates import EmailType, MailRenderer, resolve_language
from worker.domain.mailer import Mailer, Message, Receipt, build, check_address, check_header
from worker.domain.models import DeliveryStatus, MailDelivery

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
    service: MailService,
    *,
    job_id: int,
    email_type: EmailType,
    language: str | None,
    to: str,
    context: Mapping[str, object],
    final_attempt: bool = True,
) -> dict[str, str | None]:
    """Render ``email_type`` in the recipient's language and deliver it once.

    ``final_attempt`` says whether a transient refusal will be retried (``retrying``) or ends
    the job (``failed``).

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
        service,
        mailer,
        job_id=job_id,
        mail_type=email_type.value,
        language=rendered.language.value,
        message=Message(
            sender=service.sender, to=recipient, subject=rendered.subject, html=rendered.html
        ),
        final_attempt=final_attempt,
    )


def send_raw(
    service: MailService,
    *,
    job_id: int,
    recipients: Sequence[str],
    subject: str,
    html: str,
    final_attempt: bool = True,
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
            service,
            mailer,
            job_id=job_id,
            mail_type=EmailType.ENTERPRISE_CUSTOM.value,
            language=resolve_language(None).value,
            message=Message(sender=service.sender, to=recipient, subject=subject, html=html),
            final_attempt=final_attempt,
            join_job=len(checked) == 1,
        )
        for recipient in checked
    }


def deliver(
    service: MailService,
    mailer: Mailer,
    *,
    job_id: int,
    mail_type: str,
    language: str,
    message: Message,
    final_attempt: bool = True,
    join_job: bool = True,
) -> dict[str, str | None]:
    """Claim, send and record one message (see the module docstring); ``join_job=False`` when
    the job sends several, so that each ``sent`` record commits at once."""
    build(message)  # every header checked before anything is recorded or sent
    previous = _claim(service, job_id, mail_type, language, message.to)
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
        _record_refusal(job_id, message.to, exc, final_attempt=final_attempt)
        raise
    _record_sent(job_id, message.to, receipt, join_job=join_job)
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
    service: MailService, job_id: int, mail_type: str, language: str, recipient: str
) -> dict[str, str | None] | None:
    """Mark the delivery ``sending``; return the recorded receipt if it was already sent."""
    with db.session_scope(new=True) as session:
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


def _record_sent(job_id: int, recipient: str, receipt: Receipt, *, join_job: bool) -> None:
    # A single message's record joins the job's transaction (it commits with the job's outcome);
    # with several recipients each record commits at once, or a later refusal would roll the
    # earlier ones back and they would be sent again.
    with db.session_scope(new=not join_job) as session:
        session.execute(
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


def _record_refusal(job_id: int, recipient: str, exc: DomainError, *, final_attempt: bool) -> None:
    retried = isinstance(exc, TransientError) and not final_attempt
    status = DeliveryStatus.RETRYING if retried else DeliveryStatus.FAILED
    with db.session_scope(new=True) as session:
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
