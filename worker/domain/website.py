"""Web pages as text, for ``website_crawl`` documents.

By default the page is fetched directly and its main text pulled out of the HTML. With a crawl
provider configured, the provider's Firecrawl-style ``/scrape`` endpoint does the fetching and
returns Markdown. Failed requests become ``TransientError`` (408, 429, 5xx, timeouts,
unreachable) or ``PermanentError`` (any other non-2xx reply, bad URLs, unsupported content),
naming the URL (see :mod:`worker.domain.http`).
"""

from __future__ import annotations

import logging

import httpx

from worker.domain import extract
from worker.domain.errors import PermanentError
from worker.domain.http import HTTPAdapter, json_object, send

logger = logging.getLogger(__name__)

#: User-Agent of direct fetches.
USER_AGENT = "pg-task-layer/0.1 (Dify task layer website import)"
#: Seconds to wait for a page or the crawl provider by default.
WEBSITE_TIMEOUT = 30.0

_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml", ""})


class WebsiteFetcher(HTTPAdapter):
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
        super().__init__(timeout=timeout, client=client)
        self._crawl_base_url = crawl_base_url.rstrip("/") if crawl_base_url else None
        self._crawl_api_key = crawl_api_key

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
        response = send(
            self._client,
            "GET",
            url,
            what=url,
            headers={
                "User-Agent": USER_AGENT,
                "Accept": "text/html,application/xhtml+xml,text/plain;q=0.9,*/*;q=0.1",
            },
            follow_redirects=True,
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
        what = f"crawl provider for {url}"
        response = send(
            self._client,
            "POST",
            f"{base_url}/scrape",
            what=what,
            headers=headers,
            json={"url": url, "onlyMainContent": only_main_content},
            follow_redirects=True,
        )
        body = json_object(response, what)
        data = body.get("data")
        if not body.get("success") or not isinstance(data, dict):
            reason = body.get("error") or "no data in reply"
            raise PermanentError(f"crawl provider could not scrape {url}: {reason}")
        markdown = data.get("markdown")
        if not isinstance(markdown, str):
            raise PermanentError(f"crawl provider sent no markdown for {url}")
        return markdown.strip()
