"""Langfuse's public ingestion API, sent synchronously: a payload is delivered when Langfuse
says so.

``POST {host}/api/public/ingestion`` with HTTP Basic auth ``public_key:secret_key`` and a JSON
body ``{"batch": [event, ...]}`` of at most :data:`MAX_BATCH_BYTES`; Langfuse answers ``207``
with ``{"successes": [...], "errors": [...]}``, a per-event verdict. Connection errors,
timeouts, 408/429 and 5xx are transient; 401/403 and other 4xx, and any per-event error, are
permanent, with Langfuse's own message. The secret key never appears in an error.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from worker.domain import http
from worker.domain.errors import DomainError, PermanentError, TransientError
from worker.domain.ops_trace.events import Event

#: Langfuse's default host (Dify's ``LangfuseConfig``).
DEFAULT_HOST = "https://api.langfuse.com"
#: Largest request body Langfuse's ingestion accepts (3.5 MB), in bytes.
MAX_BATCH_BYTES = 3_500_000
PATH = "/api/public/ingestion"


class ProviderRefused(PermanentError):
    """The tracing provider refused the events."""


@dataclass(frozen=True, kw_only=True)
class LangfuseTarget:
    """Where an app's traces go, and with which keys."""

    host: str
    public_key: str
    secret_key: str = field(repr=False)

    @property
    def url(self) -> str:
        return self.host.rstrip("/") + PATH


class Langfuse(http.HTTPAdapter):
    """An ingestion client; one ``httpx.Client`` (a connection pool) serves every target."""

    def send(self, target: LangfuseTarget, events: Sequence[Event]) -> int:
        """Send ``events`` in as few requests as the size cap allows; return how many Langfuse
        accepted (all of them).

        Raises
        ------
        TransientError
            Unreachable, timed out, or answered 408, 429 or 5xx.
        ProviderRefused, PermanentError
            Refused (401/403/other 4xx), an event refused in the 207 reply, or an event larger
            than the size cap by itself.
        """
        accepted = 0
        for batch in _batches(events):
            accepted += self._post(target, batch)
        return accepted

    def _post(self, target: LangfuseTarget, batch: list[Event]) -> int:
        what = f"Langfuse ingestion at {target.host}"
        try:
            response = http.send(
                self._client,
                "POST",
                target.url,
                what=what,
                headers={"Authorization": _basic(target)},
                json={"batch": batch},
            )
        except DomainError as exc:
            raise _scrubbed(exc, target) from None
        body = http.json_object(response, what) if response.content else {}
        errors = body.get("errors") or []
        if errors:
            detail = "; ".join(_describe(error) for error in errors[:5])
            more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
            raise ProviderRefused(
                _scrub(f"{what} refused {len(errors)} event(s): {detail}{more}", target)
            )
        return len(batch)


def _basic(target: LangfuseTarget) -> str:
    token = base64.b64encode(f"{target.public_key}:{target.secret_key}".encode()).decode()
    return f"Basic {token}"


def _describe(error: Any) -> str:
    if not isinstance(error, dict):
        return str(error)
    parts = [str(error.get("id", "?")), str(error.get("status", ""))]
    parts += [str(error[key]) for key in ("message", "error") if error.get(key)]
    return " ".join(part for part in parts if part)


def _scrub(text: str, target: LangfuseTarget) -> str:
    return text.replace(target.secret_key, "***") if target.secret_key else text


def _scrubbed(exc: DomainError, target: LangfuseTarget) -> DomainError:
    kind = TransientError if isinstance(exc, TransientError) else PermanentError
    return kind(_scrub(str(exc), target))


def _batches(events: Sequence[Event]) -> Iterator[list[Event]]:
    batch: list[Event] = []
    size = 0
    for event in events:
        event_size = len(json.dumps(event, default=str)) + 1
        if event_size + 16 > MAX_BATCH_BYTES:
            raise PermanentError(
                f"trace event {event['type']} is {event_size} bytes, more than Langfuse's "
                f"{MAX_BATCH_BYTES} per request"
            )
        if batch and size + event_size + 16 > MAX_BATCH_BYTES:
            yield batch
            batch, size = [], 0
        batch.append(event)
        size += event_size
    if batch:
        yield batch


_shared_lock = threading.Lock()
_shared: dict[float, Langfuse] = {}


def shared(timeout: float) -> Langfuse:
    """The process's client for ``timeout`` (connections are kept alive between jobs); made on
    first use."""
    with _shared_lock:
        client = _shared.get(timeout)
        if client is None:
            client = _shared[timeout] = Langfuse(timeout=timeout)
        return client
