"""Process rules, token counting and splitting: how Dify turns a document's text into segments.

All functions are pure: no I/O, no model downloads, the same output for the same input. Text is
cleaned (:func:`clean`) before it is split.

Lengths are measured with :func:`count_tokens`, an offline approximation of GPT tokenizers. Dify's
current splitter measures characters (its ``from_encoder`` ignores the embedding model and uses
``len``), so a Dify chunk limit of 500 means 500 characters while ours means about 500 tokens.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import re
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

from worker.domain.cleaning import clean
from worker.domain.errors import PermanentError
from worker.domain.models.enums import ProcessRuleMode

__all__ = [
    "AUTOMATIC_RULE",
    "ParentChunk",
    "ParentMode",
    "ProcessRule",
    "clean",
    "content_hash",
    "count_tokens",
    "parse_rule",
    "split_paragraphs",
    "split_parent_child",
    "word_count",
]

#: Smallest chunk limit Dify accepts for a custom or hierarchical rule.
MIN_SEGMENT_TOKENS = 50
#: Largest chunk limit, Dify's default ``INDEXING_MAX_SEGMENTATION_TOKENS_LENGTH``.
MAX_SEGMENT_TOKENS = 4000
#: A full-doc parent keeps at most this many tokens of the document, as Dify announces.
FULL_DOC_MAX_TOKENS = 10000
#: Where an over-long piece is cut next, coarsest first; ``""`` cuts between characters. Dify's
#: list lacks ``"\n"``, which leaves single-line-break text to sentence and word cuts.
FALLBACK_SEPARATORS: tuple[str, ...] = ("\n\n", "\n", "。", ". ", " ", "")


def _check_size(key: str, max_tokens: int, overlap: int) -> None:
    if not MIN_SEGMENT_TOKENS <= max_tokens <= MAX_SEGMENT_TOKENS:
        raise PermanentError(
            f"{key}.max_tokens must be between {MIN_SEGMENT_TOKENS} and {MAX_SEGMENT_TOKENS},"
            f" got {max_tokens}"
        )
    if not 0 <= overlap < max_tokens:
        raise PermanentError(
            f"{key}.chunk_overlap must be at least 0 and below max_tokens ({max_tokens}),"
            f" got {overlap}"
        )


class ParentMode(enum.StrEnum):
    """``rules.parent_mode`` of a hierarchical rule: what a parent chunk is."""

    #: Parents are split from the text like paragraph segments.
    PARAGRAPH = "paragraph"
    #: The whole document (its first ``FULL_DOC_MAX_TOKENS`` tokens) is the only parent.
    FULL_DOC = "full-doc"


@dataclasses.dataclass(frozen=True, kw_only=True)
class ProcessRule:
    """A validated ``dataset_process_rules`` row: how to clean and split a document's text."""

    mode: ProcessRuleMode
    remove_extra_spaces: bool
    remove_urls_emails: bool
    #: Cut here first, newlines unescaped; each piece is its own chunk unless too long. Empty
    #: means no fixed separator: the whole text is cut recursively and small pieces merged, as
    #: Dify's automatic splitter does.
    separator: str
    max_tokens: int
    chunk_overlap: int
    parent_mode: ParentMode = ParentMode.PARAGRAPH
    #: Child chunk settings; rules of other modes carry Dify's parent-child defaults.
    subchunk_separator: str = "\n"
    subchunk_max_tokens: int = 512
    subchunk_overlap: int = 0

    def __post_init__(self) -> None:
        _check_size("segmentation", self.max_tokens, self.chunk_overlap)
        _check_size("subchunk_segmentation", self.subchunk_max_tokens, self.subchunk_overlap)


@dataclasses.dataclass(frozen=True, kw_only=True)
class ParentChunk:
    """A parent segment and the child chunks that are embedded in its place."""

    content: str
    children: tuple[str, ...]


#: Dify's ``DatasetProcessRule.AUTOMATIC_RULES``; its ``delimiter`` is never read by Dify's
#: automatic splitter, hence no fixed separator.
AUTOMATIC_RULE = ProcessRule(
    mode=ProcessRuleMode.AUTOMATIC,
    remove_extra_spaces=True,
    remove_urls_emails=False,
    separator="",
    max_tokens=500,
    chunk_overlap=50,
)
#: ``DocumentService.DEFAULT_RULES``, used for a custom rule stored without ``rules``.
_DEFAULT_CUSTOM_RULE = dataclasses.replace(
    AUTOMATIC_RULE, mode=ProcessRuleMode.CUSTOM, separator="\n", max_tokens=1024
)
#: The console's parent-child defaults, used for a hierarchical rule stored without ``rules``.
_DEFAULT_HIERARCHICAL_RULE = dataclasses.replace(
    AUTOMATIC_RULE,
    mode=ProcessRuleMode.HIERARCHICAL,
    separator="\n\n",
    max_tokens=1024,
    chunk_overlap=0,
)
_DEFAULTS = {
    ProcessRuleMode.AUTOMATIC: AUTOMATIC_RULE,
    ProcessRuleMode.CUSTOM: _DEFAULT_CUSTOM_RULE,
    ProcessRuleMode.HIERARCHICAL: _DEFAULT_HIERARCHICAL_RULE,
}
_ESCAPE = re.compile(r"\\([\\nrt])")
_UNESCAPED = {"\\": "\\", "n": "\n", "r": "\r", "t": "\t"}


def parse_rule(mode: str, rules: Mapping[str, Any] | None) -> ProcessRule:
    """Read a process rule as Dify stores it (``dataset_process_rules.mode`` and ``rules``).

    ``automatic`` ignores ``rules`` and uses Dify's automatic rule (:data:`AUTOMATIC_RULE`). A
    ``custom`` or ``hierarchical`` rule stored without ``rules`` (None) gets Dify's defaults for
    that mode. Otherwise ``segmentation`` (``separator``, default ``"\\n"``; ``max_tokens``;
    ``chunk_overlap``, default 0) is required, except for a ``full-doc`` parent, which ignores it;
    a hierarchical rule also needs ``subchunk_segmentation``. Separators arrive JSON-escaped as
    the console sends them: ``\\n``, ``\\t``, ``\\r`` and ``\\\\`` are unescaped.

    Parameters
    ----------
    mode
        ``automatic``, ``custom`` or ``hierarchical``.
    rules
        The ``rules`` JSON document.

    Raises
    ------
    PermanentError
        The mode is unknown or a field is missing or invalid; the message names the field.
    """
    try:
        rule_mode = ProcessRuleMode(mode)
    except ValueError:
        modes = ", ".join(m.value for m in ProcessRuleMode)
        raise PermanentError(f"mode must be one of {modes}, got {mode!r}") from None
    if rule_mode is ProcessRuleMode.AUTOMATIC or rules is None:
        return _DEFAULTS[rule_mode]
    remove_extra_spaces, remove_urls_emails = _pre_processing(rules.get("pre_processing_rules"))
    if rule_mode is ProcessRuleMode.CUSTOM:
        separator, max_tokens, overlap = _segmentation(rules, "segmentation")
        return ProcessRule(
            mode=rule_mode,
            remove_extra_spaces=remove_extra_spaces,
            remove_urls_emails=remove_urls_emails,
            separator=separator,
            max_tokens=max_tokens,
            chunk_overlap=overlap,
        )
    parent_mode = _parent_mode(rules.get("parent_mode"))
    default = _DEFAULT_HIERARCHICAL_RULE
    separator, max_tokens, overlap = (
        (default.separator, default.max_tokens, default.chunk_overlap)
        if parent_mode is ParentMode.FULL_DOC
        else _segmentation(rules, "segmentation")
    )
    sub_separator, sub_max_tokens, sub_overlap = _segmentation(rules, "subchunk_segmentation")
    return ProcessRule(
        mode=rule_mode,
        remove_extra_spaces=remove_extra_spaces,
        remove_urls_emails=remove_urls_emails,
        separator=separator,
        max_tokens=max_tokens,
        chunk_overlap=overlap,
        parent_mode=parent_mode,
        subchunk_separator=sub_separator,
        subchunk_max_tokens=sub_max_tokens,
        subchunk_overlap=sub_overlap,
    )


def _pre_processing(value: object) -> tuple[bool, bool]:
    """``(remove_extra_spaces, remove_urls_emails)``; unknown ids (``remove_stopwords``) ignored."""
    if value is None:
        return False, False
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise PermanentError("pre_processing_rules must be a list")
    enabled: set[object] = set()
    for entry in value:
        if not isinstance(entry, Mapping):
            raise PermanentError("pre_processing_rules entries must be objects")
        # Dify tests ``enabled is True``: a string "true" does not switch a rule on.
        if entry.get("enabled") is True:
            enabled.add(entry.get("id"))
    return "remove_extra_spaces" in enabled, "remove_urls_emails" in enabled


def _segmentation(rules: Mapping[str, Any], key: str) -> tuple[str, int, int]:
    value = rules.get(key)
    if value is None:
        raise PermanentError(f"{key} is required")
    if not isinstance(value, Mapping):
        raise PermanentError(f"{key} must be an object")
    separator = value.get("separator", "\n")
    if not isinstance(separator, str):
        raise PermanentError(f"{key}.separator must be a string")
    max_tokens = _integer(value.get("max_tokens"), f"{key}.max_tokens")
    overlap = _integer(value.get("chunk_overlap", 0), f"{key}.chunk_overlap")
    _check_size(key, max_tokens, overlap)
    return _ESCAPE.sub(lambda m: _UNESCAPED[m.group(1)], separator), max_tokens, overlap


def _integer(value: object, field: str) -> int:
    if value is None:
        raise PermanentError(f"{field} is required")
    if isinstance(value, bool) or not isinstance(value, int):
        raise PermanentError(f"{field} must be an integer, got {value!r}")
    return value


def _parent_mode(value: object) -> ParentMode:
    if value is None:
        return ParentMode.PARAGRAPH
    try:
        return ParentMode(str(value))
    except ValueError:
        raise PermanentError(
            f"parent_mode must be 'paragraph' or 'full-doc', got {value!r}"
        ) from None


# Han, kana and Hangul; ``[^\W{_CJK}]`` is ``\w`` without them.
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\U00020000-\U0003ffff"
_TOKEN = re.compile(f"(?P<cjk>[{_CJK}])|(?P<word>[^\\W{_CJK}]+)|\\S")
_CHARACTERS_PER_TOKEN = 4


def count_tokens(text: str) -> int:
    """Approximate the number of GPT tokens in ``text``, offline and deterministically.

    Each CJK character (Han, kana, Hangul) counts 1. A word (a run of other letters, digits and
    ``_``) counts one per 4 characters, rounded to the nearest, at least 1: ``the`` and ``quick``
    1, ``tokenizer`` 2. Every other visible character (punctuation, symbols) counts 1; white
    space 0. This overestimates ``cl100k_base`` by about 15-25% on English prose and technical
    markdown, and is close to it on Chinese: limits err on the small side.
    """
    return sum(_cost(match) for match in _TOKEN.finditer(text))


def _cost(match: re.Match[str]) -> int:
    word = match.group("word")
    if not word:
        return 1
    return max(1, (len(word) + _CHARACTERS_PER_TOKEN // 2) // _CHARACTERS_PER_TOKEN)


def word_count(text: str) -> int:
    """``documents.word_count`` / ``document_segments.word_count``: characters, as Dify counts."""
    return len(text)


def content_hash(text: str) -> str:
    """``index_node_hash``: Dify's ``generate_text_hash``, the SHA-256 hex of ``text + "None"``.

    The suffix is Dify's; keeping it gives the same hash Dify stores for the same content.
    """
    return hashlib.sha256(f"{text}None".encode()).hexdigest()


def split_paragraphs(text: str, rule: ProcessRule) -> list[str]:
    """Split cleaned text into segments of at most ``rule.max_tokens`` tokens.

    As Dify's ``FixedRecursiveCharacterTextSplitter``: the text is cut at ``rule.separator`` and
    each piece becomes one segment. A piece over the limit is cut at the first of
    :data:`FALLBACK_SEPARATORS` it contains, recursively, and neighbouring small pieces are merged
    up to the limit, each merged chunk starting with up to ``rule.chunk_overlap`` tokens of the end
    of the previous one. Segments are stripped and empty ones dropped.

    Unlike Dify, fallback cuts keep their separator (Dify glues words back together without their
    spaces) and a leading ``.`` or ``。`` is not removed from a segment.
    """
    return _split(text, rule.separator, rule.max_tokens, rule.chunk_overlap)


def split_parent_child(text: str, rule: ProcessRule) -> list[ParentChunk]:
    """Split cleaned text into parents with child chunks, as Dify's parent-child processor.

    ``paragraph`` parents are split like :func:`split_paragraphs`; a ``full-doc`` parent is the
    whole text cut after :data:`FULL_DOC_MAX_TOKENS` tokens. Children are split from each parent
    by the ``subchunk_*`` settings in the same way. A parent without children is dropped.
    """
    if rule.parent_mode is ParentMode.FULL_DOC:
        parents = [_truncate(text, FULL_DOC_MAX_TOKENS).strip()]
    else:
        parents = split_paragraphs(text, rule)
    chunks = []
    for parent in parents:
        children = _split(
            parent, rule.subchunk_separator, rule.subchunk_max_tokens, rule.subchunk_overlap
        )
        if children:
            chunks.append(ParentChunk(content=parent, children=tuple(children)))
    return chunks


def _split(text: str, separator: str, max_tokens: int, overlap: int) -> list[str]:
    pieces: list[str] = []
    for piece in text.split(separator) if separator else [text]:
        if count_tokens(piece) > max_tokens:
            pieces.extend(_split_recursive(piece, FALLBACK_SEPARATORS, max_tokens, overlap))
        else:
            pieces.append(piece)
    return [stripped for piece in pieces if (stripped := piece.strip())]


def _split_recursive(
    text: str, separators: Sequence[str], max_tokens: int, overlap: int
) -> list[str]:
    """Cut ``text`` at its coarsest separator, recurse into pieces still too long, merge the rest.

    Single characters count at most 1 token and ``max_tokens`` is at least 50, so the ``""``
    level never recurses further.
    """
    index = next(i for i, sep in enumerate(separators) if not sep or sep in text)
    separator, finer = separators[index], separators[index + 1 :]
    chunks: list[str] = []
    small: list[tuple[str, int]] = []
    for piece in _cut(text, separator):
        tokens = count_tokens(piece)
        if tokens <= max_tokens:
            small.append((piece, tokens))
            continue
        chunks.extend(_merge(small, max_tokens, overlap))
        small = []
        chunks.extend(_split_recursive(piece, finer, max_tokens, overlap))
    chunks.extend(_merge(small, max_tokens, overlap))
    return chunks


def _cut(text: str, separator: str) -> list[str]:
    """Cut after each ``separator``, which stays at the end of its piece; ``""`` cuts characters."""
    if not separator:
        return list(text)
    parts = text.split(separator)
    pieces = [part + separator for part in parts[:-1]]
    if parts[-1]:
        pieces.append(parts[-1])
    return pieces


def _merge(pieces: list[tuple[str, int]], max_tokens: int, overlap: int) -> list[str]:
    """Join consecutive pieces (each within the limit) into chunks of at most ``max_tokens``.

    A new chunk starts with the last pieces of the previous one, as many as fit in ``overlap``
    tokens and leave room for the next piece. Adding the pieces' counts never undercounts a
    chunk: pieces end in white space or ``。``, so no word spans two of them, or are single
    characters, which count 1 each, at least their share of any word.
    """
    chunks: list[str] = []
    window: deque[tuple[str, int]] = deque()
    total = 0
    for piece, tokens in pieces:
        if window and total + tokens > max_tokens:
            chunks.append("".join(text for text, _ in window))
            while window and (total > overlap or total + tokens > max_tokens):
                total -= window.popleft()[1]
        window.append((piece, tokens))
        total += tokens
    if window:
        chunks.append("".join(text for text, _ in window))
    return chunks


def _truncate(text: str, max_tokens: int) -> str:
    """The longest prefix of ``text`` within ``max_tokens``, cut inside a word if need be."""
    total = 0
    for match in _TOKEN.finditer(text):
        cost = _cost(match)
        if total + cost > max_tokens:
            left = max_tokens - total
            # A word prefix of 4 * left - 2 characters counts exactly ``left`` tokens.
            room = max(0, left * _CHARACTERS_PER_TOKEN - 2) if match.group("word") else 0
            return text[: match.start() + room]
        total += cost
    return text
