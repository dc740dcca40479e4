"""HTTP requests with httpx, their failures mapped to domain errors.

Shared by the adapters that call HTTP services (Notion, web pages and crawl providers, embedding
endpoints). :func:`send` raises ``PermanentError`` for a bad address, an unsupported scheme or a
redirect loop; ``TransientError`` for a timeout or any other transport failure; and, for a reply
outside 2xx, ``TransientError`` on 408, 429 and 5xx, ``PermanentError`` otherwise. Messages name
what was being asked (``what``: "Notion page <id>", a page URL, "embedding endpoint <url>"), the
HTTP status and the reply's own error text.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from types import TracebackType
from typing import Any, Self

import httpx

from worker.domain.errors import DomainError, PermanentError, TransientError

#: Statuses worth retrying besides 5xx: request timeout, rate limit.
TRANSIENT_STATUSES = frozenset({408, 429})

#: Request failures that asking again will not fix.
_PERMANENT_FAILURES = (httpx.InvalidURL, httpx.UnsupportedProtocol, httpx.TooManyRedirects)


class HTTPAdapter:
    """Base of adapters that talk to an HTTP service through an ``httpx.Client``.

    Parameters
    ----------
    timeout:
        Seconds the client created here waits for each request.
    client:
        An HTTP client to use instead of one of our own; the caller closes it.
    """

    def __init__(self, *, timeout: float, client: httpx.Client | None = None) -> None:
        self._owns_client = client is None
        self._client = client if client is not None else httpx.Client(timeout=timeout)

    def close(self) -> None:
        """Close the HTTP client if this object created it."""
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def send(
    client: httpx.Client,
    method: str,
    url: str,
    *,
    what: str,
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, str | int] | None = None,
    json: Any = None,
    data: Mapping[str, str] | None = None,
    files: Mapping[str, tuple[str, bytes, str]] | None = None,
    timeout: float | None = None,
    follow_redirects: bool = False,
) -> httpx.Response:
    """Send one request and return its 2xx reply, mapping failures to domain errors.

    Parameters
    ----------
    what:
        What the request is for, named in error messages (``"Notion page <id>"``).
    data, files:
        Form fields and files (``{field: (filename, content, content type)}``): a multipart
        body.
    timeout:
        Seconds to wait for this request; ``None`` keeps the client's timeout.

    Raises
    ------
    TransientError
        Timeout, unreachable host or other transport failure; a 408, 429 or 5xx reply.
    PermanentError
        Invalid URL, unsupported scheme, too many redirects; any other non-2xx reply.
    """
    with _mapped(what):
        response = client.request(
            method,
            url,
            headers=headers,
            params=params,
            json=json,
            data=data,
            files=files,
            timeout=httpx.USE_CLIENT_DEFAULT if timeout is None else timeout,
            follow_redirects=follow_redirects,
        )
    if not response.is_success:
        raise _status_error(response, what)
    return response


def download(
    client: httpx.Client,
    url: str,
    *,
    what: str,
    max_bytes: int,
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, str | int] | None = None,
) -> bytes:
    """GET ``url`` (following redirects) and return its body, read up to ``max_bytes``.

    Raises
    ------
    TransientError, PermanentError
        As :func:`send`; and ``PermanentError`` for a body larger than ``max_bytes``.
    """
    with (
        _mapped(what),
        client.stream(
            "GET", url, headers=headers, params=params, follow_redirects=True
        ) as response,
    ):
        if not response.is_success:
            response.read()
            raise _status_error(response, what)
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max_bytes:
            raise PermanentError(f"{what} is {declared} bytes, more than the {max_bytes} allowed")
        body = bytearray()
        for chunk in response.iter_bytes():
            body += chunk
            if len(body) > max_bytes:
                raise PermanentError(f"{what} is more than the {max_bytes} bytes allowed")
        return bytes(body)


@contextlib.contextmanager
def _mapped(what: str) -> Iterator[None]:
    """Transport failures of a request as domain errors."""
    try:
        yield
    except _PERMANENT_FAILURES as exc:
        raise PermanentError(_detailed(f"cannot fetch {what}", exc)) from exc
    except httpx.TimeoutException as exc:
        raise TransientError(_detailed(f"timed out waiting for {what}", exc)) from exc
    except httpx.RequestError as exc:
        raise TransientError(_detailed(f"cannot reach {what}", exc)) from exc


def json_object(response: httpx.Response, what: str) -> dict[str, Any]:
    """The reply's body as a JSON object.

    Raises
    ------
    PermanentError
        The body is not JSON, or not an object.
    """
    try:
        body = response.json()
    except ValueError as exc:
        raise PermanentError(f"reply from {what} is not JSON") from exc
    if not isinstance(body, dict):
        raise PermanentError(f"reply from {what} is not a JSON object")
    return body


def _status_error(response: httpx.Response, what: str) -> DomainError:
    """The error for a non-2xx reply: transient for 408, 429 and 5xx, else permanent."""
    status = response.status_code
    message = _detailed(f"{what} returned HTTP {status}", _reply_error(response))
    if status in TRANSIENT_STATUSES or status >= 500:
        return TransientError(message)
    return PermanentError(message)


def _reply_error(response: httpx.Response) -> str:
    """The error text of a JSON error reply, else ``""``.

    That is ``error.message`` (OpenAI), ``error`` as a string (crawl providers) or ``message``
    (Notion).
    """
    try:
        body = response.json()
    except ValueError:
        return ""
    if not isinstance(body, dict):
        return ""
    error = body.get("error")
    if isinstance(error, dict):
        error = error.get("message")
    reason = error or body.get("message")
    return str(reason) if reason else ""


def _detailed(message: str, detail: object) -> str:
    """``message: detail``, or just ``message`` when the detail is empty."""
    text = str(detail)
    return f"{message}: {text}" if text else message
