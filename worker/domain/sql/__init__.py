"""Named raw SQL blocks, loaded once from the ``.sql`` files of this folder.

A block starts with a line ``-- name --``; the comment lines right after it describe it.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from typing import LiteralString

_HEADER = re.compile(r"^-- ([a-z_][a-z0-9_]*) --$", re.MULTILINE)


def parse(text: str) -> dict[str, str]:
    """Split a file's text into ``{name: sql}``."""
    parts = _HEADER.split(text)
    blocks: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in blocks:
            raise ValueError(f"SQL block {name!r} is defined twice")
        blocks[name] = body.strip()
    return blocks


@cache
def queries() -> dict[str, LiteralString]:
    """Every named block of every ``.sql`` file here."""
    found: dict[str, LiteralString] = {}
    for entry in resources.files(__name__).iterdir():
        if entry.name.endswith(".sql"):
            for name, body in parse(entry.read_text(encoding="utf-8")).items():
                if name in found:
                    raise ValueError(f"SQL block {name!r} is defined in two files")
                found[name] = body  # our own files: trusted SQL
    return found
