"""Text cleaning before splitting: Dify's ``CleanProcessor``, without its character-eating bug.

Always applied: ``<|`` and ``|>`` (chat-template markers) become ``<`` and ``>``, and control
characters other than tab, line feed and carriage return are removed, as are the non-characters
U+FFFE and U+FFFF. Dify's pattern also lists ``\\xEF\\xBF\\xBE``, meant as the UTF-8 bytes of U+FFFE
but applied to decoded text, so it deletes every ``ï``, ``¿`` and ``¾``; we do not.

``remove_urls_emails`` runs before ``remove_extra_spaces`` (Dify follows the order of the rule list,
spaces first), so the gaps left by removed addresses are collapsed too.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from worker.domain.chunking import ProcessRule

_INVALID_CHARACTERS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")
_LINE_BREAK = re.compile(r"\r\n?")
_EXTRA_NEWLINES = re.compile(r"\n{3,}")
#: Dify's set of horizontal white space; a run of two or more becomes one space.
_SPACE_RUN = re.compile("[\t\f\r \u00a0\u1680\u180e\u2000-\u200a\u202f\u205f\u3000]{2,}")
#: A markdown link or image to an http(s) address: kept whole, text and address.
_MARKDOWN_LINK = r"!?\[[^\]\n]*\]\(https?://[^)\s]+\)"
_URL = r"https?://\S+"
_EMAIL = r"[a-zA-Z0-9_.+-]+@[a-zA-Z0-9-]+\.[a-zA-Z0-9-.]+"
_ADDRESS = re.compile(f"(?P<markdown>{_MARKDOWN_LINK})|{_URL}|{_EMAIL}")


def clean(text: str, rule: ProcessRule) -> str:
    """Clean extracted text by the rule's pre-processing switches, as Dify does before splitting.

    Parameters
    ----------
    text
        Text extracted from the document.
    rule
        ``remove_urls_emails`` deletes e-mail addresses and http(s) URLs, except inside markdown
        links and images (``[text](url)``, ``![alt](url)``), kept whole as Dify does since its
        PR #30392. ``remove_extra_spaces`` turns CR LF and CR into LF, three or more line breaks
        into two, and runs of two or more spaces or tabs into one space.
    """
    text = text.replace("<|", "<").replace("|>", ">")
    text = _INVALID_CHARACTERS.sub("", text)
    if rule.remove_urls_emails:
        text = _ADDRESS.sub(_keep_markdown_link, text)
    if rule.remove_extra_spaces:
        text = _LINE_BREAK.sub("\n", text)
        text = _EXTRA_NEWLINES.sub("\n\n", text)
        text = _SPACE_RUN.sub(" ", text)
    return text


def _keep_markdown_link(match: re.Match[str]) -> str:
    return match.group("markdown") or ""
