"""Keyword index of economy datasets: jieba keywords and a ``simple`` full-text vector per node.

Dify keeps one JSON "keyword table" per dataset (keyword -> node ids) and searches it by the
query's keywords. Here every node is a row of ``keyword_index`` with its keywords and a
``tsvector`` built from jieba-segmented text, so that search is one GIN-indexed ``@@`` with
``ts_rank`` and works for Chinese as well as English. Nothing here needs the network: jieba's
dictionary and IDF table ship with the package.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
import typing
import unicodedata
import uuid
import warnings
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from worker.domain import errors, sql
from worker.domain.models import KeywordEntry
from worker.domain.ports import SearchHit

logger = logging.getLogger(__name__)

#: Keywords kept per node when the caller gives none (Dify's ``keyword_number`` default).
KEYWORD_NUMBER = 10

#: Words too common to select anything: dropped from queries unless nothing else is left, and
#: weighed less by the local embedder.
STOP_WORDS = frozenset(
    "a an and are as at be been but by can could do does did for from has have if in into is it "
    "its may no not of on or so such than that the then there these this those to was were "
    "what when where which who why how will with would you your i we "
    "的 了 是 在 和 与 及 或 也 都 就 而 吗 呢 吧 啊 这 那 什么 怎么 如何 哪些 为什么".split()
)

#: One item to index: (node id, document id or None, content, keywords or None to extract).
KeywordItem = tuple[str, str | None, str, Sequence[str] | None]

_WORD = re.compile(r"[^\W_]")
#: A Han, kana or hangul character: text that needs jieba to be split into words.
_CJK = re.compile(
    "[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\U00020000-\U0002fa1f]"
)
_jieba_lock = threading.Lock()


@functools.cache
def _jieba() -> Any:
    """The ``jieba`` module, imported and initialised once, quietly.

    ``jieba.analyse`` reads its IDF table with an unclosed ``open()`` at import (a
    ``ResourceWarning``), and ``jieba._compat`` imports ``pkg_resources`` when available, which
    newer setuptools deprecate; both are silenced for the import only. Loading the dictionary
    takes about a second (then a cache file in the temporary directory makes it faster), so it
    happens on first use rather than at import.
    """
    with _jieba_lock, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="unclosed file", category=ResourceWarning)
        warnings.filterwarnings("ignore", message="pkg_resources is deprecated")
        import jieba
        import jieba.analyse

        jieba.setLogLevel(logging.WARNING)
        jieba.initialize()
    return jieba


def normalise(text: str) -> str:
    """NFKC-normalised (full-width letters and digits become ASCII) and lowercased text."""
    return unicodedata.normalize("NFKC", text).lower()


def segment(text: str, *, search: bool = False) -> list[str]:
    """The words of ``text`` as jieba segments them, lowercased, without spaces or punctuation.

    Parameters
    ----------
    text:
        Chinese, English or mixed text.
    search:
        jieba's search mode: long words are also split into their shorter words
        (``北京大学`` gives ``北京``, ``大学`` and ``北京大学``), for indexing and querying.
    """
    jieba = _jieba()
    cut = jieba.lcut_for_search if search else jieba.lcut
    return [word for word in cut(normalise(text)) if _WORD.search(word)]


def full_text(text: str) -> str:
    """What the full-text vector of ``text`` is built from: its jieba words (search mode) when
    it has CJK characters; otherwise the normalised text, which PostgreSQL's ``simple`` parser
    splits into the same lowercased words a few times faster than jieba."""
    if _CJK.search(text) is None:
        return normalise(text)
    return " ".join(segment(text, search=True))


def extract_keywords(text: str, top_k: int = KEYWORD_NUMBER) -> list[str]:
    """The ``top_k`` most significant words of ``text`` by jieba's TF-IDF, lowercased, unique."""
    if top_k <= 0:
        return []
    jieba = _jieba()
    tags = jieba.analyse.extract_tags(normalise(text), topK=top_k)
    return _unique(tag.strip() for tag in tags if _WORD.search(tag))[:top_k]


def _unique(words: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(word for word in words if word))


def _tsquery(query: str) -> str | None:
    """An OR ``tsquery`` text of the query's words (stop words dropped when others remain)."""
    words = _unique(segment(query, search=True))
    significant = [word for word in words if word not in STOP_WORDS] or words
    if not significant:
        return None
    quoted = ("'" + word.replace("\\", "\\\\").replace("'", "''") + "'" for word in significant)
    return " | ".join(quoted)


def parse_uuid(value: str, what: str) -> uuid.UUID:
    """``value`` as a UUID. Raises ``PermanentError`` naming ``what`` if it is not one."""
    try:
        return uuid.UUID(value)
    except (TypeError, ValueError, AttributeError) as exc:
        raise errors.PermanentError(f"{what} is not a UUID: {value!r}") from exc


class KeywordIndex:
    """The ``keyword_index`` table. Every method works in the caller's open session."""

    def extract_keywords(self, text: str, top_k: int = KEYWORD_NUMBER) -> list[str]:
        """See :func:`extract_keywords`."""
        return extract_keywords(text, top_k)

    def upsert(
        self,
        session: orm.Session,
        dataset_id: str,
        items: Sequence[KeywordItem],
        *,
        keyword_number: int = KEYWORD_NUMBER,
    ) -> int:
        """Index (or re-index) nodes of a dataset; returns how many nodes were written.

        Parameters
        ----------
        session:
            Open session; the caller commits.
        dataset_id:
            The dataset the nodes belong to.
        items:
            ``(node_id, document_id, content, keywords)``; ``keywords`` ``None`` extracts
            ``keyword_number`` keywords from the content. A node given twice keeps the last.
        keyword_number:
            How many keywords to extract per node.

        Raises
        ------
        PermanentError
            An id is not a UUID.
        """
        dataset = parse_uuid(dataset_id, "dataset id")
        rows: dict[str, dict[str, Any]] = {}
        for node_id, document_id, content, keywords in items:
            words = (
                extract_keywords(content, keyword_number)
                if keywords is None
                else _unique(normalise(word).strip() for word in keywords)
            )
            rows[node_id] = {
                "dataset_id": dataset,
                "node_id": node_id,
                "document_id": None
                if document_id is None
                else parse_uuid(document_id, "document id"),
                "keywords": words,
                "keyword_text": " ".join(words),
                "segmented": full_text(content),
            }
        if rows:
            session.execute(sa.text(sql.queries()["keyword_upsert"]), list(rows.values()))
        return len(rows)

    def delete_nodes(self, session: orm.Session, dataset_id: str, node_ids: Sequence[str]) -> int:
        """Remove nodes of a dataset; returns how many rows were deleted."""
        if not node_ids:
            return 0
        return self._delete(
            session,
            KeywordEntry.dataset_id == parse_uuid(dataset_id, "dataset id"),
            KeywordEntry.node_id.in_(list(node_ids)),
        )

    def delete_document(self, session: orm.Session, dataset_id: str, document_id: str) -> int:
        """Remove every node of one document; returns how many rows were deleted."""
        return self._delete(
            session,
            KeywordEntry.dataset_id == parse_uuid(dataset_id, "dataset id"),
            KeywordEntry.document_id == parse_uuid(document_id, "document id"),
        )

    def delete_dataset(self, session: orm.Session, dataset_id: str) -> int:
        """Remove the dataset's whole keyword index; returns how many rows were deleted."""
        return self._delete(
            session, KeywordEntry.dataset_id == parse_uuid(dataset_id, "dataset id")
        )

    def search(
        self, session: orm.Session, dataset_id: str, query: str, top_k: int = 4
    ) -> list[SearchHit]:
        """The dataset's nodes sharing words with ``query``, best first.

        The score is ``ts_rank`` (keywords weigh more than other words), normalised by the
        node's length and mapped into ``[0, 1)``. ``content`` and ``doc_hash`` come from the
        node's segment, as in Dify (empty when the segment is gone).
        """
        tsquery = _tsquery(query)
        if tsquery is None or top_k <= 0:
            return []
        rows = session.execute(
            sa.text(sql.queries()["keyword_search"]),
            {"dataset_id": parse_uuid(dataset_id, "dataset id"), "query": tsquery, "top_k": top_k},
        ).all()
        return [
            SearchHit(
                node_id=row.node_id,
                content=row.content,
                score=float(row.score),
                document_id=row.document_id,
                metadata={
                    "doc_id": row.node_id,
                    "doc_hash": row.doc_hash,
                    "document_id": row.document_id,
                    "dataset_id": dataset_id,
                },
            )
            for row in rows
        ]

    @staticmethod
    def _delete(session: orm.Session, *conditions: sa.ColumnElement[bool]) -> int:
        result = session.execute(sa.delete(KeywordEntry).where(*conditions))
        return typing.cast("sa.CursorResult[Any]", result).rowcount
