"""Notion pages and databases as plain text, over Notion's public REST API.

The text of a page is its blocks, one per line, children after their parent; the text of a
database is its rows, one ``property: value`` line per property and a blank line between rows
(Dify's ``NotionExtractor`` for ``notion_import`` documents). Failed requests become
``TransientError`` (408, 429, 5xx, timeouts, unreachable) or ``PermanentError`` (any other
non-2xx reply, malformed replies), naming the page (see :mod:`worker.domain.http`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import httpx

from worker.domain.errors import PermanentError
from worker.domain.http import HTTPAdapter, json_object, send

logger = logging.getLogger(__name__)

#: Notion API version sent with every request.
NOTION_VERSION = "2022-06-28"
#: Items per page asked of Notion's paginated endpoints (its maximum).
NOTION_PAGE_SIZE = 100
#: Seconds to wait for Notion by default.
NOTION_TIMEOUT = 30.0

#: Block types rendered as a line, with the prefix that goes before their text.
BLOCK_PREFIXES: Mapping[str, str] = {
    "paragraph": "",
    "heading_1": "# ",
    "heading_2": "## ",
    "heading_3": "### ",
    "bulleted_list_item": "- ",
    "numbered_list_item": "- ",
    "to_do": "",
    "quote": "",
    "code": "",
    "callout": "",
    "toggle": "",
}
#: Blocks whose children are separate pages, imported as documents of their own.
_SEPARATE_PAGES = frozenset({"child_page", "child_database"})

JSON = dict[str, Any]


class NotionClient(HTTPAdapter):
    """Reads pages and databases of one Notion workspace.

    Parameters
    ----------
    base_url:
        The API root, ``https://api.notion.com/v1`` in production.
    token:
        The integration's access token.
    timeout:
        Seconds to wait for each request (ignored when ``client`` is given).
    client:
        An HTTP client to use instead of one of our own; the caller closes it.
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = NOTION_TIMEOUT,
        client: httpx.Client | None = None,
    ) -> None:
        super().__init__(timeout=timeout, client=client)
        self._base_url = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}", "Notion-Version": NOTION_VERSION}

    def last_edited_time(self, page_id: str, page_type: str) -> str:
        """Notion's ``last_edited_time`` of a page or database (an ISO 8601 string).

        Parameters
        ----------
        page_id:
            The page or database id.
        page_type:
            ``page`` or ``database`` (``data_source_info.type``).

        Raises
        ------
        TransientError
            Notion is unreachable, slow, rate-limiting or failing.
        PermanentError
            Unknown ``page_type``, the page is missing or not shared, or the reply is malformed.
        """
        kind = {"page": "pages", "database": "databases"}.get(page_type)
        if kind is None:
            raise PermanentError(f"unknown Notion page type {page_type!r} for page {page_id}")
        body = self._request("GET", f"/{kind}/{page_id}", page_id=page_id)
        value = body.get("last_edited_time")
        if not isinstance(value, str):
            raise PermanentError(f"Notion reply for page {page_id} has no last_edited_time")
        return value

    def page_text(self, page_id: str, page_type: str) -> str:
        """The text of a page (its blocks) or of a database (its rows' properties).

        Parameters
        ----------
        page_id:
            The page or database id.
        page_type:
            ``page`` or ``database``.

        Raises
        ------
        TransientError
            Notion is unreachable, slow, rate-limiting or failing.
        PermanentError
            Unknown ``page_type``, the page is missing or not shared, or a reply is malformed.
        """
        if page_type == "page":
            text = "\n".join(self._page_lines(page_id))
        elif page_type == "database":
            text = "\n\n".join(self._database_rows(page_id))
        else:
            raise PermanentError(f"unknown Notion page type {page_type!r} for page {page_id}")
        logger.info(
            "read %d characters from Notion %s %s",
            len(text),
            page_type,
            page_id,
            extra={"action": "notion_page_read", "notion_page_id": page_id},
        )
        return text

    def _page_lines(self, page_id: str) -> Iterator[str]:
        """The page's block lines, depth first, children right after their parent."""
        stack = [self._children(page_id, page_id=page_id)]
        while stack:
            block = next(stack[-1], None)
            if block is None:
                stack.pop()
                continue
            line = _block_line(block)
            if line:
                yield line
            if block.get("has_children") and block.get("type") not in _SEPARATE_PAGES:
                stack.append(self._children(str(block.get("id")), page_id=page_id))

    def _children(self, block_id: str, *, page_id: str) -> Iterator[JSON]:
        """The child blocks of ``block_id``, following Notion's pagination."""
        params: dict[str, str | int] = {"page_size": NOTION_PAGE_SIZE}
        while True:
            body = self._request(
                "GET", f"/blocks/{block_id}/children", page_id=page_id, params=params
            )
            yield from _results(body, page_id)
            cursor = body.get("next_cursor")
            if not body.get("has_more") or not isinstance(cursor, str):
                return
            params = {"page_size": NOTION_PAGE_SIZE, "start_cursor": cursor}

    def _database_rows(self, database_id: str) -> Iterator[str]:
        """Each row of the database as ``property: value`` lines."""
        payload: JSON = {"page_size": NOTION_PAGE_SIZE}
        while True:
            body = self._request(
                "POST", f"/databases/{database_id}/query", page_id=database_id, json=payload
            )
            for row in _results(body, database_id):
                lines = _row_lines(row)
                if lines:
                    yield "\n".join(lines)
            cursor = body.get("next_cursor")
            if not body.get("has_more") or not isinstance(cursor, str):
                return
            payload = {"page_size": NOTION_PAGE_SIZE, "start_cursor": cursor}

    def _request(
        self,
        method: str,
        path: str,
        *,
        page_id: str,
        params: Mapping[str, str | int] | None = None,
        json: JSON | None = None,
    ) -> JSON:
        """Send one request and return its JSON object, mapping failures to domain errors."""
        what = f"Notion page {page_id}"
        response = send(
            self._client,
            method,
            f"{self._base_url}{path}",
            what=what,
            headers=self._headers,
            params=params,
            json=json,
        )
        return json_object(response, what)


def _results(body: JSON, page_id: str) -> list[JSON]:
    results = body.get("results")
    if not isinstance(results, list):
        raise PermanentError(f"Notion reply for page {page_id} has no results list")
    return [item for item in results if isinstance(item, dict)]


def _plain_text(rich_text: object) -> str:
    """The concatenated ``plain_text`` of a Notion rich-text array."""
    if not isinstance(rich_text, list):
        return ""
    return "".join(
        str(part.get("plain_text") or "") for part in rich_text if isinstance(part, dict)
    )


def _block_line(block: JSON) -> str:
    """The line for one block, or ``""`` for blocks without text of their own."""
    kind = str(block.get("type"))
    content = block.get(kind)
    if not isinstance(content, dict):
        return ""
    if kind == "table_row":
        cells = content.get("cells")
        return " | ".join(_plain_text(cell) for cell in cells) if isinstance(cells, list) else ""
    prefix = BLOCK_PREFIXES.get(kind)
    if prefix is None:
        return ""
    text = _plain_text(content.get("rich_text")).strip()
    return f"{prefix}{text}" if text else ""


def _row_lines(row: JSON) -> list[str]:
    """``name: value`` for each property of a database row that has a value."""
    properties = row.get("properties")
    if not isinstance(properties, dict):
        return []
    lines = []
    for name, prop in properties.items():
        if not isinstance(prop, dict):
            continue
        render = _PROPERTY_RENDERERS.get(str(prop.get("type")))
        value = render(prop.get(str(prop.get("type")))) if render else ""
        if value:
            lines.append(f"{name}: {value}")
    return lines


def _named(value: object) -> str:
    return str(value.get("name") or "") if isinstance(value, dict) else ""


def _names(value: object) -> str:
    return ", ".join(_named(item) for item in value) if isinstance(value, list) else ""


def _date(value: object) -> str:
    if not isinstance(value, dict) or not value.get("start"):
        return ""
    start, end = str(value["start"]), value.get("end")
    return f"{start} to {end}" if end else start


def _scalar(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


_PROPERTY_RENDERERS: Mapping[str, Callable[[object], str]] = {
    "title": _plain_text,
    "rich_text": _plain_text,
    "number": _scalar,
    "select": _named,
    "status": _named,
    "multi_select": _names,
    "date": _date,
    "checkbox": _scalar,
    "url": _scalar,
    "email": _scalar,
    "phone_number": _scalar,
}
