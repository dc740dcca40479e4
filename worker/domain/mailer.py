"""Sending one e-mail: message checks and the SMTP backend (HTTP backends in ``mail_http``).

Every backend either returns a :class:`Receipt` (the provider's message id or the SMTP server's
final reply) or raises: ``TransientError`` for what may pass (refused or dropped connections,
timeouts, SMTP 4xx, HTTP 408/429/5xx), ``PermanentError`` for what will not (SMTP 5xx, rejected
addresses or credentials, HTTP 4xx). Nothing is swallowed.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Protocol

from worker.domain.errors import PermanentError, TransientError
from worker.domain.mail_headers import bare, check_address, check_header, compose, serialize

__all__ = [
    "Mailer",
    "Message",
    "Receipt",
    "SMTPMailer",
    "build",
    "check_address",  # re-exported: the mail services check arguments with them
    "check_header",
]

logger = logging.getLogger(__name__)

#: Seconds an SMTP connection may take to answer (Dify's value).
SMTP_TIMEOUT = 10.0


@dataclass(frozen=True, kw_only=True)
class Message:
    """One e-mail to one recipient."""

    sender: str
    to: str
    subject: str
    html: str


@dataclass(frozen=True, kw_only=True)
class Receipt:
    """What the backend said when it accepted the message."""

    #: The provider's id of the message (Resend, SendGrid), or our Message-ID for SMTP.
    message_id: str | None
    #: The SMTP server's final reply (``250 2.0.0 Ok: queued as ...``), when sent by SMTP.
    reply: str | None = None


class Mailer(Protocol):
    """A mail backend chosen by ``MAIL_TYPE``."""

    def send(self, message: Message) -> Receipt:
        """Hand the message over; raise Transient/PermanentError when it was not accepted."""
        ...


def build(message: Message) -> EmailMessage:
    """The MIME message (HTML body) with every header checked (``mail_headers.compose``) and
    proven to serialise as set (``mail_headers.serialize``, which gives the bytes to send).

    Raises
    ------
    PermanentError
        A header value could add a header or a line, or an address is invalid.
    """
    email = compose(sender=message.sender, to=message.to, subject=message.subject)
    # quoted-printable keeps every line under SMTP's 998-character limit
    email.set_content(message.html, subtype="html", cte="quoted-printable")
    serialize(email)
    return email


class SMTPMailer:
    """SMTP: implicit TLS (``use_tls``), STARTTLS (``use_tls`` + ``opportunistic_tls``) or plain.

    Authenticates only when both username and password are set, as Dify. One connection per
    message.
    """

    def __init__(
        self,
        server: str,
        port: int,
        *,
        username: str | None = None,
        password: str | None = None,
        use_tls: bool = False,
        opportunistic_tls: bool = False,
        timeout: float = SMTP_TIMEOUT,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.server = server
        self.port = port
        self._username = username
        self._password = password
        self._implicit_tls = use_tls and not opportunistic_tls
        self._starttls = use_tls and opportunistic_tls
        self._timeout = timeout
        self._ssl_context = ssl_context or ssl.create_default_context()

    def send(self, message: Message) -> Receipt:
        email = build(message)
        data = serialize(email)
        try:
            with self._connect() as smtp:
                if self._starttls:
                    smtp.starttls(context=self._ssl_context)
                if self._username and self._password:
                    smtp.login(self._username, self._password)
                code, reply = self._transfer(smtp, message, data)
        except smtplib.SMTPResponseException as exc:
            raise _reply_error(exc.smtp_code, exc.smtp_error, self.server) from exc
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = next(iter(exc.recipients.values()))
            raise _reply_error(code, text, self.server) from exc
        except (smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError, OSError) as exc:
            raise TransientError(
                f"cannot deliver through SMTP server {self.server}:{self.port}: {exc}"
            ) from exc
        return Receipt(message_id=str(email["Message-ID"]), reply=f"{code} {reply}")

    def _connect(self) -> smtplib.SMTP:
        if self._implicit_tls:
            return smtplib.SMTP_SSL(
                self.server, self.port, timeout=self._timeout, context=self._ssl_context
            )
        return smtplib.SMTP(self.server, self.port, timeout=self._timeout)

    @staticmethod
    def _transfer(smtp: smtplib.SMTP, message: Message, data: bytes) -> tuple[int, str]:
        """MAIL, RCPT, DATA for the single recipient; the server's final reply.

        The envelope takes the checked addresses as given, never a header's decoded text."""
        smtp.ehlo_or_helo_if_needed()
        envelope = (("mail", bare(message.sender)), ("rcpt", message.to.strip()))
        for command, argument in envelope:
            code, text = getattr(smtp, command)(argument)
            if code >= 400:
                smtp.rset()
                raise smtplib.SMTPResponseException(code, text)
        code, text = smtp.data(data)
        if code >= 400:
            raise smtplib.SMTPResponseException(code, text)
        return code, text.decode(errors="replace") if isinstance(text, bytes) else str(text)


def _reply_error(code: int, text: bytes | str, server: str) -> PermanentError | TransientError:
    reply = text.decode(errors="replace") if isinstance(text, bytes) else str(text)
    message = f"SMTP server {server} replied {code} {reply}"
    if 400 <= code < 500:
        return TransientError(message)
    return PermanentError(message)
