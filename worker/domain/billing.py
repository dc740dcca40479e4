"""Client of Dify's billing service (``BILLING_API_URL``): what account deletion asks of it.

Every request carries ``Billing-Api-Secret-Key``. Failures follow :func:`worker.domain.http.send`:
a timeout, a refused connection or a 408/429/5xx reply is transient (the job retries); any other
non-2xx reply is permanent. Dify parsed whatever came back and never looked at the status.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import httpx

from worker.config import Settings
from worker.domain import http
from worker.domain.errors import PermanentError


class BillingNotConfigured(PermanentError):
    """Billing is not enabled: ``BILLING_ENABLED``, ``BILLING_API_URL`` and
    ``BILLING_API_SECRET_KEY`` are needed."""


class Billing(http.HTTPAdapter):
    """Dify's billing API at ``base_url``."""

    def __init__(
        self, base_url: str, secret_key: str, *, timeout: float, client: httpx.Client | None = None
    ) -> None:
        super().__init__(timeout=timeout, client=client)
        self._base = base_url.rstrip("/")
        self._headers = {"Billing-Api-Secret-Key": secret_key}

    def delete_account(self, account_id: str) -> None:
        """``DELETE /account/?account_id=...``: the billing service deletes the account.

        Raises
        ------
        TransientError
            The service could not be reached, timed out, or answered 408, 429 or 5xx.
        PermanentError
            Any other non-2xx reply.
        """
        http.send(
            self._client, "DELETE", f"{self._base}/account/",
            what=f"billing API (deleting account {account_id})",
            headers=self._headers, params={"account_id": account_id},
        )  # fmt: skip


@contextlib.contextmanager
def connect(settings: Settings) -> Iterator[Billing]:
    """The billing client of ``settings``, closed on exit.

    Raises
    ------
    BillingNotConfigured
        Billing is not enabled in ``settings``.
    """
    key = settings.billing_api_secret_key
    if not (settings.billing_enabled and settings.billing_api_url and key):
        raise BillingNotConfigured()
    with Billing(
        settings.billing_api_url, key.get_secret_value(), timeout=settings.http_timeout
    ) as client:
        yield client
