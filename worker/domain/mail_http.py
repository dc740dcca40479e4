"""Mail backends over HTTP APIs: Resend and SendGrid (base URLs configurable)."""

from __future__ import annotations

import httpx

from worker.domain import http
from worker.domain.mailer import Message, Receipt, build

#: Resend's API.
RESEND_API_URL = "https://api.resend.com"
#: SendGrid's API.
SENDGRID_API_URL = "https://api.sendgrid.com"
#: Seconds per request.
MAIL_HTTP_TIMEOUT = 30.0


class _APIMailer(http.HTTPAdapter):
    """A mail API reached at ``{base_url}{PATH}`` with a bearer key."""

    DEFAULT_BASE_URL = ""
    PATH = ""

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str | None = None,
        timeout: float = MAIL_HTTP_TIMEOUT,
        client: httpx.Client | None = None,
    ) -> None:
        super().__init__(timeout=timeout, client=client)
        self._url = f"{(base_url or self.DEFAULT_BASE_URL).rstrip('/')}{self.PATH}"
        self._headers = {"Authorization": f"Bearer {api_key}"}


class ResendMailer(_APIMailer):
    """``POST {base}/emails``; the reply's ``id`` is the message id."""

    DEFAULT_BASE_URL = RESEND_API_URL
    PATH = "/emails"

    def send(self, message: Message) -> Receipt:
        build(message)  # header checks
        what = f"Resend ({self._url})"
        response = http.send(
            self._client, "POST", self._url, what=what, headers=self._headers,
            json={"from": message.sender, "to": [message.to], "subject": message.subject,
                  "html": message.html},
        )  # fmt: skip
        message_id = http.json_object(response, what).get("id")
        return Receipt(message_id=str(message_id) if message_id else None)


class SendGridMailer(_APIMailer):
    """``POST {base}/v3/mail/send``; the ``X-Message-Id`` header is the message id."""

    DEFAULT_BASE_URL = SENDGRID_API_URL
    PATH = "/v3/mail/send"

    def send(self, message: Message) -> Receipt:
        build(message)  # header checks
        payload = {
            "personalizations": [{"to": [{"email": message.to}]}],
            "from": {"email": message.sender},
            "subject": message.subject,
            "content": [{"type": "text/html", "value": message.html}],
        }
        response = http.send(
            self._client, "POST", self._url, what=f"SendGrid ({self._url})",
            headers=self._headers, json=payload,
        )  # fmt: skip
        return Receipt(message_id=response.headers.get("X-Message-Id"))
