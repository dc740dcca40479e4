"""Text extraction for the indexing pipeline: uploaded files to plain text.

:func:`extract_file` picks a reader by the file's extension (Dify's ``ExtractProcessor`` for
``upload_file`` documents). Notion pages and web pages have their own adapters in
:mod:`worker.domain.notion` and :mod:`worker.domain.website`; the latter reuses
:func:`html_to_text` from here.
"""

from __future__ import annotations

import codecs
import csv
import io
import logging
import re
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from html import unescape

import docx
import pypdf
from bs4 import BeautifulSoup
from bs4.element import (
    Comment,
    Declaration,
    Doctype,
    NavigableString,
    ProcessingInstruction,
    Tag,
)
from docx.opc.exceptions import PackageNotFoundError
from docx.table import Table
from pypdf.errors import PyPdfError

from worker.domain.errors import PermanentError

logger = logging.getLogger(__name__)

#: Encodings tried in order on text without a byte-order mark; latin-1 accepts any bytes.
TEXT_ENCODINGS = ("utf-8", "gb18030", "latin-1")

#: Elements whose content is never page text.
DROPPED_TAGS = frozenset(
    {"script", "style", "nav", "header", "footer", "noscript", "template", "head", "svg"}
)
#: Elements that start and end a paragraph (a blank line around them).
PARAGRAPH_TAGS = frozenset(
    {
        "p", "div", "section", "article", "main", "aside", "blockquote", "pre", "table",
        "ul", "ol", "dl", "figure", "figcaption", "form", "fieldset", "address", "details",
        "h1", "h2", "h3", "h4", "h5", "h6", "hr",
    }
)  # fmt: skip
#: Elements that start and end a line.
LINE_TAGS = frozenset({"li", "tr", "dt", "dd", "summary", "caption"})
#: Table cells, separated from their neighbours by a space.
CELL_TAGS = frozenset({"td", "th"})

#: What pypdf raises on damaged or unsupported files, besides its own errors.
_PDF_ERRORS: tuple[type[Exception], ...] = (
    PyPdfError,
    ValueError,
    KeyError,
    TypeError,
    AttributeError,
    IndexError,
    zlib.error,
    RecursionError,
)
#: What python-docx raises on damaged files; lxml's XMLSyntaxError is a SyntaxError.
_DOCX_ERRORS: tuple[type[Exception], ...] = (
    PackageNotFoundError,
    zipfile.BadZipFile,
    KeyError,
    ValueError,
    SyntaxError,
)
_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_SKIPPED_STRINGS = (Comment, Declaration, Doctype, ProcessingInstruction)
_WHITESPACE = re.compile(r"\s+")
_BLANK_LINES = re.compile(r"\n{3,}")


def extract_file(data: bytes, *, extension: str, name: str) -> str:
    """The text of an uploaded file; ``""`` when it has none.

    Parameters
    ----------
    data:
        The file's bytes.
    extension:
        The file type, with or without the dot, in any case: ``txt``, ``md``, ``markdown``,
        ``html``, ``htm``, ``csv``, ``pdf`` or ``docx``.
    name:
        The file's name, for messages.

    Raises
    ------
    PermanentError
        The extension is not supported, or the file is damaged or cannot be read.
    """
    kind = extension.strip().lstrip(".").lower()
    reader = _READERS.get(kind)
    if reader is None:
        raise PermanentError(f"unsupported file type {kind!r} for {name}")
    text = reader(data, name)
    logger.debug(
        "extracted %d characters from %s",
        len(text),
        name,
        extra={"action": "file_extracted", "file_name": name, "file_type": kind},
    )
    return text


def decode_text(data: bytes) -> str:
    """Decode ``data`` by its byte-order mark, else by the first of :data:`TEXT_ENCODINGS` that
    fits."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data.decode(encoding, errors="replace")
    for encoding in TEXT_ENCODINGS:
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise AssertionError("latin-1 decodes any bytes")  # pragma: no cover


def html_to_text(html: str, *, main_only: bool = False) -> str:
    """The readable text of an HTML document, paragraphs separated by blank lines.

    Scripts, styles, navigation, headers and footers are dropped. With ``main_only``, the text
    comes from the first ``<main>`` or ``<article>`` element when there is one, else the body.
    """
    if "<" not in html:
        # Text without a single tag: parsed, it would be one paragraph. (Skipping the parser also
        # avoids its warning that short tagless markup "looks like a URL or a file name".)
        return _WHITESPACE.sub(" ", unescape(html)).strip()
    soup = BeautifulSoup(html, "lxml")
    root: Tag = soup
    if main_only:
        found = soup.find("main") or soup.find("article") or soup.body
        if isinstance(found, Tag):
            root = found
    return _tidy(_join(_html_pieces(root)))


def _html_pieces(root: Tag) -> Iterator[str | int]:
    """The text of ``root`` in document order: strings, and ints asking for that many line
    breaks (1 around lines, 2 around paragraphs).

    Walks with an explicit stack, so deeply nested pages cannot exhaust the recursion limit.
    """
    # Each entry is a node to visit (and whether it is inside <pre>), or, with no node, a piece
    # to emit once the element it closes has been walked.
    stack: list[tuple[Tag | NavigableString | None, str | int, bool]] = [(root, 0, False)]
    while stack:
        node, piece, in_pre = stack.pop()
        if node is None:
            yield piece
        elif isinstance(node, NavigableString):
            if not isinstance(node, _SKIPPED_STRINGS):
                yield str(node) if in_pre else _WHITESPACE.sub(" ", node)
        elif node.name == "br":
            yield "\n"
        elif node.name not in DROPPED_TAGS:
            before, after = _breaks(node.name)
            yield before
            stack.append((None, after, in_pre))
            child_in_pre = in_pre or node.name == "pre"
            for child in reversed(node.contents):
                if isinstance(child, Tag | NavigableString):
                    stack.append((child, 0, child_in_pre))


def _breaks(tag_name: str) -> tuple[int, str | int]:
    """What to emit before and after an element's content."""
    if tag_name in PARAGRAPH_TAGS:
        return 2, 2
    if tag_name in LINE_TAGS:
        return 1, 1
    if tag_name in CELL_TAGS:
        return 0, " "
    return 0, 0


def _join(pieces: Iterable[str | int]) -> str:
    """Concatenate text pieces; adjacent breaks merge into the largest, and whitespace between
    breaks is dropped."""
    out: list[str] = []
    pending = 0
    for piece in pieces:
        if isinstance(piece, int):
            pending = max(pending, piece)
        elif pending and piece.strip():
            out.append("\n" * pending)
            out.append(piece)
            pending = 0
        elif not pending:
            out.append(piece)
    return "".join(out)


def _tidy(text: str) -> str:
    """Strip every line and keep at most one blank line between paragraphs."""
    lines = (line.strip() for line in text.split("\n"))
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def _read_text(data: bytes, name: str) -> str:
    return decode_text(data)


def _read_html(data: bytes, name: str) -> str:
    return html_to_text(decode_text(data))


def _read_csv(data: bytes, name: str) -> str:
    """One line per data row: ``column: value; column: value``, named by the header row."""
    rows = csv.reader(io.StringIO(decode_text(data), newline=""))
    try:
        header = [cell.strip() for cell in next(rows, [])]
        lines = [_csv_line(header, row) for row in rows if any(cell.strip() for cell in row)]
    except csv.Error as exc:
        raise PermanentError(f"cannot read {name}: {exc}") from exc
    return "\n".join(lines)


def _csv_line(header: list[str], row: list[str]) -> str:
    pairs = []
    for index, value in enumerate(row):
        column = header[index] if index < len(header) and header[index] else f"column {index + 1}"
        pairs.append(f"{column}: {value.strip()}")
    return "; ".join(pairs)


def _read_pdf(data: bytes, name: str) -> str:
    """Each page's text, pages separated by blank lines."""
    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            reader.decrypt("")
        pages = [(page.extract_text() or "").strip() for page in reader.pages]
    except _PDF_ERRORS as exc:
        raise PermanentError(f"cannot read {name}: {exc}") from exc
    return "\n\n".join(page for page in pages if page)


def _read_docx(data: bytes, name: str) -> str:
    """Paragraphs one per line, table rows as cells joined by `` | ``, in document order."""
    try:
        document = docx.Document(io.BytesIO(data))
        lines = [line for block in document.iter_inner_content() for line in _docx_lines(block)]
    except _DOCX_ERRORS as exc:
        raise PermanentError(f"cannot read {name}: {exc}") from exc
    return "\n".join(line for line in lines if line)


def _docx_lines(block: object) -> Iterator[str]:
    """The lines of a python-docx ``Paragraph`` or ``Table``."""
    if isinstance(block, Table):
        for row in block.rows:
            cells: list[str] = []
            previous = None
            for cell in row.cells:
                # A merged cell appears once per grid column it spans, side by side.
                if cell._tc is not previous:
                    cells.append(str(cell.text).strip())
                previous = cell._tc
            yield " | ".join(cells)
    else:
        yield str(getattr(block, "text", "")).strip()


_READERS: dict[str, Callable[[bytes, str], str]] = {
    "txt": _read_text,
    "md": _read_text,
    "markdown": _read_text,
    "html": _read_html,
    "htm": _read_html,
    "csv": _read_csv,
    "pdf": _read_pdf,
    "docx": _read_docx,
}
