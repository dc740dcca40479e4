"""Web pages as text, for ``website_crawl`` documents.

By default the page is fetched directly and its main text pulled out of the HTML. With a crawl
provider configured, the provider's Firecrawl-style ``/scrape`` endpoint does the fetching and
returns Markdown. Failed requests become ``TransientError`` (429, 5xx, timeouts, unreachable) or
``PermanentError`` (any other 4xx, bad URLs, unsupported content), naming the URL.
"""

from __future__ import annotations

import logging
from types import TracebackType
from typing import Any

import httpx

from worker.domain import extract
from worker.domain.errors import DomainError, PermanentError, TransientError

logger = logging.getLogger(__name__)

#: User-Agent of direct fetches.
USER_AGENT = "pg-task-layer/0.1 (Dify task layer website import)"
#: Seconds to wait for a page or the crawl provider by default.
WEBSITE_TIMEOUT = 30.0

_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml", ""})


class WebsiteFetcher:
    """Fetches one page at a time, directly or through a crawl provider.

    Parameters
    ----------
    timeout:
        Seconds to wait for each request (ignored when ``client`` is given).
    client:
        An HTTP client to use instead of one of our own; the caller closes it.
    crawl_base_url:
        Root of a Firecrawl-compatible API (``https://api.firecrawl.dev/v1``); ``None`` fetches
        pages directly.
    crawl_api_key:
        Bearer token for the crawl provider.
    """

    def __init__(
        self,
        *,
        timeout: float = WEBSITE_TIMEOUT,
        client: httpx.Client | None = None,
        crawl_base_url: str | None = None,
        crawl_api_key: str | None = None,
    ) -> None:
        self._owns_client = client is None
        self._client = client if client is not None else httpx.Client(timeout=timeout)
        self._crawl_base_url = crawl_base_url.rstrip("/") if crawl_base_url else None
        self._crawl_api_key = crawl_api_key

    def close(self) -> None:
        """Close the HTTP client if this object created it."""
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> WebsiteFetcher:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def fetch(self, url: str, *, only_main_content: bool = True) -> str:
        """The text of the page at ``url``.

        Parameters
        ----------
        url:
            The page's address.
        only_main_content:
            Keep only the main content (``<main>``/``<article>`` when present), not the whole body.

        Raises
        ------
        TransientError
            The site or provider is unreachable, slow, rate-limiting or failing.
        PermanentError
            The URL is invalid, the page is missing or forbidden, its content type is neither HTML
            nor plain text, or the provider could not scrape it.
        """
        if self._crawl_base_url is not None:
            text = self._scrape(self._crawl_base_url, url, only_main_content)
        else:
            text = self._get(url, only_main_content)
        logger.info(
            "fetched %d characters from %s",
            len(text),
            url,
            extra={"action": "website_page_fetched", "url": url},
        )
        return text

    def _get(self, url: str, only_main_content: bool) -> str:
        response = self._send(
            "GET",
            url,
            page_url=url,
            headers={
                "User-Agent": USER_AGENT,
                "Accept": "text/html,application/xhtml+xml,text/plain;q=0.9,*/*;q=0.1",
            },
        )
        content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type not in _HTML_TYPES and content_type != "text/plain":
            raise PermanentError(f"{url} is {content_type}, not HTML or plain text")
        # Without a charset in the header, guess like uploaded files rather than assume UTF-8.
        text = response.text if response.charset_encoding else extract.decode_text(response.content)
        if content_type == "text/plain":
            return text.strip()
        return extract.html_to_text(text, main_only=only_main_content)

    def _scrape(self, base_url: str, url: str, only_main_content: bool) -> str:
        headers = {"Authorization": f"Bearer {self._crawl_api_key}"} if self._crawl_api_key else {}
        response = self._send(
            "POST",
            f"{base_url}/scrape",
            page_url=url,
            headers=headers,
            json={"url": url, "onlyMainContent": only_main_content},
        )
        body = _json(response, url)
        data = body.get("data")
        if not body.get("success") or not isinstance(data, dict):
            reason = body.get("error") or "no data in reply"
            raise PermanentError(f"crawl provider could not scrape {url}: {reason}")
        markdown = data.get("markdown")
        if not isinstance(markdown, str):
            raise PermanentError(f"crawl provider sent no markdown for {url}")
        return markdown.strip()

    def _send(
        self,
        method: str,
        target: str,
        *,
        page_url: str,
        headers: dict[str, str],
        json: dict[str, Any] | None = None,
    ) -> httpx.Response:
        """Send one request, following redirects, and map failures to domain errors."""
        try:
            response = self._client.request(
                method, target, headers=headers, json=json, follow_redirects=True
            )
        except (httpx.InvalidURL, httpx.UnsupportedProtocol, httpx.TooManyRedirects) as exc:
            raise PermanentError(f"cannot fetch {page_url}: {exc}") from exc
        except httpx.TimeoutException as exc:
            raise TransientError(f"timed out fetching {page_url}: {exc}") from exc
        except httpx.RequestError as exc:
            raise TransientError(f"cannot reach {page_url}: {exc}") from exc
        if response.is_error:
            raise _status_error(response, page_url)
        return response


def _status_error(response: httpx.Response, page_url: str) -> DomainError:
    """The error for a 4xx or 5xx reply: transient for 408, 429 and 5xx, else permanent."""
    status = response.status_code
    message = f"HTTP {status} fetching {page_url}"
    reason = _reply_error(response)
    if reason:
        message = f"{message}: {reason}"
    if status in (408, 429) or status >= 500:
        return TransientError(message)
    return PermanentError(message)


def _reply_error(response: httpx.Response) -> str:
    """The ``error`` or ``message`` of a JSON error reply (as crawl providers send), else ``""``."""
    if "json" not in response.headers.get("content-type", ""):
        return ""
    try:
        body = response.json()
    except ValueError:
        return ""
    if not isinstance(body, dict):
        return ""
    return str(body.get("error") or body.get("message") or "")


def _json(response: httpx.Response, page_url: str) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError as exc:
        raise PermanentError(f"crawl provider sent malformed JSON for {page_url}") from exc
    if not isinstance(body, dict):
        raise PermanentError(f"crawl provider sent an unexpected reply for {page_url}")
    return body
