"""The Notion client and the website fetcher against real HTTP servers (no database needed)."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from worker.domain.errors import PermanentError, TransientError
from worker.domain.notion import NotionClient
from worker.domain.website import USER_AGENT, WebsiteFetcher

TOKEN = "secret_notion_token"
NOTION_HEADERS = {"Authorization": f"Bearer {TOKEN}", "Notion-Version": "2022-06-28"}


def rich(text: str) -> list[dict[str, Any]]:
    """A Notion rich-text array split in two runs, as Notion does around formatting."""
    half = len(text) // 2
    return [
        {"type": "text", "plain_text": text[:half], "annotations": {"bold": True}},
        {"type": "text", "plain_text": text[half:], "annotations": {"bold": False}},
    ]


def block(
    block_id: str, kind: str, text: str = "", *, has_children: bool = False
) -> dict[str, Any]:
    return {
        "object": "block",
        "id": block_id,
        "type": kind,
        "has_children": has_children,
        kind: {"rich_text": rich(text)} if text else {},
    }


def listing(results: list[dict[str, Any]], next_cursor: str | None = None) -> dict[str, Any]:
    return {
        "object": "list",
        "results": results,
        "has_more": next_cursor is not None,
        "next_cursor": next_cursor,
    }


@pytest.fixture
def notion(httpserver: HTTPServer) -> Iterator[NotionClient]:
    client = NotionClient(httpserver.url_for("/v1"), TOKEN, timeout=5)
    yield client
    client.close()


@pytest.fixture
def fetcher() -> Iterator[WebsiteFetcher]:
    website = WebsiteFetcher(timeout=5)
    yield website
    website.close()


def expect_children(
    httpserver: HTTPServer, block_id: str, body: dict[str, Any], cursor: str | None = None
) -> None:
    query = {"page_size": "100"} | ({"start_cursor": cursor} if cursor else {})
    httpserver.expect_request(
        f"/v1/blocks/{block_id}/children",
        method="GET",
        headers=NOTION_HEADERS,
        query_string=query,
    ).respond_with_json(body)


def test_notion_page_last_edited_time(httpserver: HTTPServer, notion: NotionClient) -> None:
    httpserver.expect_request(
        "/v1/pages/page-1", method="GET", headers=NOTION_HEADERS
    ).respond_with_json(
        {"object": "page", "id": "page-1", "last_edited_time": "2024-05-01T10:20:00.000Z"}
    )

    assert notion.last_edited_time("page-1", "page") == "2024-05-01T10:20:00.000Z"
    httpserver.check_assertions()


def test_notion_database_last_edited_time(httpserver: HTTPServer, notion: NotionClient) -> None:
    httpserver.expect_request("/v1/databases/db-1", method="GET").respond_with_json(
        {"object": "database", "id": "db-1", "last_edited_time": "2024-06-02T08:00:00.000Z"}
    )

    assert notion.last_edited_time("db-1", "database") == "2024-06-02T08:00:00.000Z"


def test_notion_page_text_follows_pagination_and_nested_children(
    httpserver: HTTPServer, notion: NotionClient
) -> None:
    expect_children(
        httpserver,
        "page-1",
        listing(
            [
                block("b1", "heading_1", "Project plan"),
                block("b2", "paragraph", "We move every job to Postgres."),
                block("b3", "bulleted_list_item", "Queues", has_children=True),
                block("b4", "paragraph"),
            ],
            next_cursor="cursor-2",
        ),
    )
    expect_children(
        httpserver,
        "page-1",
        listing(
            [
                block("b5", "heading_2", "Risks"),
                block("b6", "numbered_list_item", "Locks"),
                block("b7", "to_do", "Write tests"),
                block("b8", "quote", "Simple beats clever."),
                block("b9", "code", "SELECT 1;"),
                block("b10", "callout", "Mind the gap."),
                block("b11", "toggle", "Details", has_children=True),
                block("b12", "heading_3", "Appendix"),
                block("b13", "child_page", has_children=True),
                block("b14", "image"),
            ]
        ),
        cursor="cursor-2",
    )
    expect_children(
        httpserver,
        "b3",
        listing([block("b3a", "bulleted_list_item", "dataset", has_children=True)]),
    )
    expect_children(httpserver, "b3a", listing([block("b3a1", "paragraph", "priority_dataset")]))
    expect_children(httpserver, "b11", listing([block("b11a", "paragraph", "Hidden text")]))

    text = notion.page_text("page-1", "page")

    assert text.splitlines() == [
        "# Project plan",
        "We move every job to Postgres.",
        "- Queues",
        "- dataset",
        "priority_dataset",
        "## Risks",
        "- Locks",
        "Write tests",
        "Simple beats clever.",
        "SELECT 1;",
        "Mind the gap.",
        "Details",
        "Hidden text",
        "### Appendix",
    ]
    httpserver.check_assertions()


def database_row(properties: dict[str, Any]) -> dict[str, Any]:
    return {"object": "page", "id": "row", "properties": properties}


def test_notion_database_rows_render_as_name_value_lines(
    httpserver: HTTPServer, notion: NotionClient
) -> None:
    first = database_row(
        {
            "Name": {"type": "title", "title": rich("Ada Lovelace")},
            "Notes": {"type": "rich_text", "rich_text": rich("First programmer")},
            "Age": {"type": "number", "number": 36},
            "Team": {"type": "select", "select": {"name": "Engines"}},
            "Tags": {"type": "multi_select", "multi_select": [{"name": "math"}, {"name": "poet"}]},
            "Born": {"type": "date", "date": {"start": "1815-12-10", "end": None}},
            "Active": {"type": "checkbox", "checkbox": True},
            "Site": {"type": "url", "url": "https://example.com/ada"},
            "Mail": {"type": "email", "email": "ada@example.com"},
            "Owner": {"type": "people", "people": [{"id": "user-1"}]},
        }
    )
    second = database_row(
        {
            "Name": {"type": "title", "title": rich("Charles Babbage")},
            "Age": {"type": "number", "number": None},
            "Team": {"type": "select", "select": None},
            "Born": {"type": "date", "date": {"start": "1791-12-26", "end": "1871-10-18"}},
            "Active": {"type": "checkbox", "checkbox": False},
        }
    )
    httpserver.expect_request(
        "/v1/databases/db-1/query", method="POST", headers=NOTION_HEADERS, json={"page_size": 100}
    ).respond_with_json(listing([first], next_cursor="c2"))
    httpserver.expect_request(
        "/v1/databases/db-1/query",
        method="POST",
        json={"page_size": 100, "start_cursor": "c2"},
    ).respond_with_json(listing([second]))

    text = notion.page_text("db-1", "database")

    assert text == (
        "Name: Ada Lovelace\n"
        "Notes: First programmer\n"
        "Age: 36\n"
        "Team: Engines\n"
        "Tags: math, poet\n"
        "Born: 1815-12-10\n"
        "Active: true\n"
        "Site: https://example.com/ada\n"
        "Mail: ada@example.com\n"
        "\n"
        "Name: Charles Babbage\n"
        "Born: 1791-12-26 to 1871-10-18\n"
        "Active: false"
    )
    httpserver.check_assertions()


def test_notion_404_is_permanent_with_notions_message(
    httpserver: HTTPServer, notion: NotionClient
) -> None:
    httpserver.expect_request("/v1/pages/gone").respond_with_json(
        {
            "object": "error",
            "status": 404,
            "code": "object_not_found",
            "message": "Could not find page with ID: gone.",
        },
        status=404,
    )

    with pytest.raises(PermanentError) as info:
        notion.last_edited_time("gone", "page")

    assert str(info.value) == (
        "Notion page gone returned HTTP 404: Could not find page with ID: gone."
    )


def test_notion_401_without_a_json_body_is_permanent(
    httpserver: HTTPServer, notion: NotionClient
) -> None:
    httpserver.expect_request("/v1/blocks/p/children").respond_with_data("nope", status=401)

    with pytest.raises(PermanentError, match=r"Notion page p returned HTTP 401$"):
        notion.page_text("p", "page")


def test_notion_503_is_transient(httpserver: HTTPServer, notion: NotionClient) -> None:
    httpserver.expect_request("/v1/blocks/page-1/children").respond_with_json(
        {"object": "error", "status": 503, "message": "Notion is unavailable."}, status=503
    )

    with pytest.raises(
        TransientError, match=r"Notion page page-1 returned HTTP 503: Notion is unavailable\."
    ):
        notion.page_text("page-1", "page")


def test_notion_429_is_transient(httpserver: HTTPServer, notion: NotionClient) -> None:
    httpserver.expect_request("/v1/databases/db-1/query").respond_with_json(
        {"object": "error", "code": "rate_limited", "message": "Slow down."},
        status=429,
        headers={"Retry-After": "1"},
    )

    with pytest.raises(TransientError, match="Notion page db-1 returned HTTP 429: Slow down"):
        notion.page_text("db-1", "database")


def test_notion_timeout_is_transient(httpserver: HTTPServer) -> None:
    def slow(request: Request) -> Response:
        time.sleep(0.5)
        return Response("{}", content_type="application/json")

    httpserver.expect_request("/v1/pages/slow").respond_with_handler(slow)
    client = NotionClient(httpserver.url_for("/v1"), TOKEN, timeout=0.1)

    with pytest.raises(TransientError, match="timed out waiting for Notion page slow") as info:
        client.last_edited_time("slow", "page")

    assert isinstance(info.value.__cause__, httpx.TimeoutException)
    client.close()


def test_notion_unreachable_is_transient() -> None:
    with NotionClient(f"http://127.0.0.1:{unused_port()}/v1", TOKEN) as client:
        with pytest.raises(TransientError, match="cannot reach Notion page p"):
            client.last_edited_time("p", "page")


def test_notion_malformed_reply_and_unknown_type_are_permanent(
    httpserver: HTTPServer, notion: NotionClient
) -> None:
    httpserver.expect_request("/v1/pages/p").respond_with_data("<html>", status=200)

    with pytest.raises(PermanentError, match="reply from Notion page p is not JSON"):
        notion.last_edited_time("p", "page")
    with pytest.raises(PermanentError, match="unknown Notion page type 'wiki' for page p"):
        notion.page_text("p", "wiki")


def test_notion_leaves_a_given_client_open(httpserver: HTTPServer) -> None:
    with httpx.Client() as http:
        NotionClient(httpserver.url_for("/v1"), TOKEN, client=http).close()

        assert not http.is_closed


ARTICLE_PAGE = """<!DOCTYPE html><html><head><title>Blog</title>
<script>window.tracking = true;</script></head><body>
<header><a href="/">My blog</a></header>
<nav><a href="/about">About</a></nav>
<div class="sidebar">Subscribe to the newsletter</div>
<main><h1>Moving to Postgres</h1>
<p>We replaced Celery and Redis with one database.</p>
<p>Every job is now a row.</p></main>
<footer>Copyright 2024</footer></body></html>"""


def test_website_fetch_picks_the_main_content(
    httpserver: HTTPServer, fetcher: WebsiteFetcher
) -> None:
    httpserver.expect_request(
        "/blog/postgres", method="GET", headers={"User-Agent": USER_AGENT}
    ).respond_with_data(ARTICLE_PAGE, content_type="text/html; charset=utf-8")
    url = httpserver.url_for("/blog/postgres")

    main = fetcher.fetch(url)
    whole = fetcher.fetch(url, only_main_content=False)

    assert main == (
        "Moving to Postgres\n\n"
        "We replaced Celery and Redis with one database.\n\n"
        "Every job is now a row."
    )
    assert whole.startswith("Subscribe to the newsletter\n\nMoving to Postgres")
    assert "tracking" not in whole
    assert "About" not in whole
    httpserver.check_assertions()


def test_website_fetch_follows_redirects(httpserver: HTTPServer, fetcher: WebsiteFetcher) -> None:
    httpserver.expect_request("/old").respond_with_data(
        "", status=301, headers={"Location": httpserver.url_for("/new")}
    )
    httpserver.expect_request("/new").respond_with_data(
        "<html><body><article><p>New home</p></article></body></html>",
        content_type="text/html",
    )

    assert fetcher.fetch(httpserver.url_for("/old")) == "New home"


def test_website_fetch_guesses_the_charset_when_the_server_gives_none(
    httpserver: HTTPServer, fetcher: WebsiteFetcher
) -> None:
    httpserver.expect_request("/zh").respond_with_data(
        "<p>向量库</p>".encode("gb18030"), content_type="text/html"
    )

    assert fetcher.fetch(httpserver.url_for("/zh")) == "向量库"


def test_website_plain_text_is_returned_as_is(
    httpserver: HTTPServer, fetcher: WebsiteFetcher
) -> None:
    httpserver.expect_request("/robots.txt").respond_with_data(
        "User-agent: *\nDisallow:\n", content_type="text/plain; charset=utf-8"
    )

    assert fetcher.fetch(httpserver.url_for("/robots.txt")) == "User-agent: *\nDisallow:"


def test_website_other_content_types_are_permanent(
    httpserver: HTTPServer, fetcher: WebsiteFetcher
) -> None:
    httpserver.expect_request("/logo.png").respond_with_data(b"\x89PNG", content_type="image/png")
    url = httpserver.url_for("/logo.png")

    with pytest.raises(
        PermanentError, match=re.escape(f"{url} is image/png, not HTML or plain text")
    ):
        fetcher.fetch(url)


def test_website_500_is_transient(httpserver: HTTPServer, fetcher: WebsiteFetcher) -> None:
    httpserver.expect_request("/broken").respond_with_data("oops", status=500)
    url = httpserver.url_for("/broken")

    with pytest.raises(TransientError, match=re.escape(f"{url} returned HTTP 500") + "$"):
        fetcher.fetch(url)


def test_website_404_is_permanent(httpserver: HTTPServer, fetcher: WebsiteFetcher) -> None:
    httpserver.expect_request("/missing").respond_with_data("not here", status=404)
    url = httpserver.url_for("/missing")

    with pytest.raises(PermanentError, match=re.escape(f"{url} returned HTTP 404")):
        fetcher.fetch(url)


def test_website_bad_urls_are_permanent_and_unreachable_hosts_transient(
    fetcher: WebsiteFetcher,
) -> None:
    with pytest.raises(PermanentError, match=re.escape("cannot fetch ftp://example.com/file")):
        fetcher.fetch("ftp://example.com/file")
    unreachable = f"http://127.0.0.1:{unused_port()}/page"
    with pytest.raises(TransientError, match=re.escape(f"cannot reach {unreachable}")):
        fetcher.fetch(unreachable)


def test_website_through_a_crawl_provider(httpserver: HTTPServer) -> None:
    httpserver.expect_request(
        "/v1/scrape",
        method="POST",
        headers={"Authorization": "Bearer fc-key"},
        json={"url": "https://example.com/docs", "onlyMainContent": False},
    ).respond_with_json(
        {"success": True, "data": {"markdown": "# Docs\n\nInstall with pip.\n", "metadata": {}}}
    )

    with WebsiteFetcher(crawl_base_url=httpserver.url_for("/v1/"), crawl_api_key="fc-key") as web:
        text = web.fetch("https://example.com/docs", only_main_content=False)

    assert text == "# Docs\n\nInstall with pip."
    httpserver.check_assertions()


def test_crawl_provider_failures_name_the_url(httpserver: HTTPServer) -> None:
    httpserver.expect_request(
        "/v1/scrape", json={"url": "https://a.test/", "onlyMainContent": True}
    ).respond_with_json({"success": False, "error": "Blocked by robots.txt"})
    httpserver.expect_request(
        "/v1/scrape", json={"url": "https://b.test/", "onlyMainContent": True}
    ).respond_with_json({"success": False, "error": "Rate limit exceeded"}, status=429)

    with WebsiteFetcher(crawl_base_url=httpserver.url_for("/v1"), crawl_api_key="k") as web:
        with pytest.raises(
            PermanentError,
            match=re.escape(
                "crawl provider could not scrape https://a.test/: Blocked by robots.txt"
            ),
        ):
            web.fetch("https://a.test/")
        with pytest.raises(
            TransientError,
            match=re.escape(
                "crawl provider for https://b.test/ returned HTTP 429: Rate limit exceeded"
            ),
        ):
            web.fetch("https://b.test/")


def unused_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port
