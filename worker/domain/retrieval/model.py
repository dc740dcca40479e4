"""A dataset's ``retrieval_model``, as Dify stores it, read into a typed value.

Dify's shape (``datasets.retrieval_model``, JSON)::

    {"search_method": "semantic_search" | "full_text_search" | "hybrid_search"
                      | "keyword_search",
     "top_k": 4,
     "score_threshold_enabled": false, "score_threshold": 0.5,
     "reranking_enable": false, "reranking_mode": "reranking_model" | "weighted_score",
     "reranking_model": {...},
     "weights": {"vector_setting": {"vector_weight": 0.7, ...},
                 "keyword_setting": {"keyword_weight": 0.3}}}

Missing keys take Dify's defaults (semantic search, top 4, no threshold). Economy datasets have
no vectors: Dify searches them by keywords whatever the model says, and so does this layer.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from worker.domain.errors import PermanentError

#: Results of a search unless the dataset's ``retrieval_model`` says otherwise (Dify's default).
TOP_K = 4
#: Most results one search returns.
MAX_TOP_K = 1000


class InvalidRetrievalModel(PermanentError):
    """The retrieval settings asked for cannot be used as given."""


class SearchMethod(enum.StrEnum):
    """``retrieval_model.search_method``."""

    #: Nearest vectors of the query's embedding (high-quality datasets).
    SEMANTIC = "semantic_search"
    #: Full-text match of the query's words, ranked by ``ts_rank``.
    FULL_TEXT = "full_text_search"
    #: Both, fused: by weights (``reranking_mode=weighted_score``) or by reciprocal rank.
    HYBRID = "hybrid_search"
    #: Keyword index of economy datasets (a full-text match here as well).
    KEYWORD = "keyword_search"


class Fusion(enum.StrEnum):
    """How a hybrid search merges its two result lists."""

    #: ``vector_weight * similarity + keyword_weight * text rank`` (Dify's weighted score).
    WEIGHTED = "weighted_score"
    #: Reciprocal rank fusion: needs no comparable scores and no rerank model. Used for Dify's
    #: ``reranking_model`` mode, as no rerank model is called here.
    RECIPROCAL_RANK = "reciprocal_rank"


@dataclass(frozen=True, kw_only=True)
class RetrievalModel:
    """How to search one dataset."""

    method: SearchMethod = SearchMethod.SEMANTIC
    top_k: int = TOP_K
    #: Results scoring below it are dropped (``None``: no threshold).
    score_threshold: float | None = None
    fusion: Fusion = Fusion.RECIPROCAL_RANK
    vector_weight: float = 0.7
    keyword_weight: float = 0.3

    def __post_init__(self) -> None:
        if not 1 <= self.top_k <= MAX_TOP_K:
            raise InvalidRetrievalModel(f"top_k {self.top_k} is outside 1..{MAX_TOP_K}")
        numbers = (self.vector_weight, self.keyword_weight, self.score_threshold or 0.0)
        if not all(math.isfinite(n) for n in numbers):
            raise InvalidRetrievalModel("weights and score threshold must be finite numbers")
        if self.vector_weight < 0 or self.keyword_weight < 0:
            raise InvalidRetrievalModel("weights must not be negative")
        if self.fusion is Fusion.WEIGHTED and self.vector_weight + self.keyword_weight == 0:
            raise InvalidRetrievalModel("weighted_score needs a positive vector or keyword weight")

    @classmethod
    def from_dify(cls, value: Mapping[str, Any] | None) -> RetrievalModel:
        """Read Dify's ``retrieval_model`` JSON (``None``: Dify's default).

        Raises
        ------
        InvalidRetrievalModel
            Unknown search method, or a value of the wrong type or out of range.
        """
        data = dict(value or {})
        try:
            method = SearchMethod(data.get("search_method") or SearchMethod.SEMANTIC)
        except ValueError:
            raise InvalidRetrievalModel(
                f"search_method {data.get('search_method')!r} is not one of "
                f"{', '.join(SearchMethod)}"
            ) from None
        threshold = data.get("score_threshold") if data.get("score_threshold_enabled") else None
        weights = data.get("weights") or {}
        weighted = data.get("reranking_mode") == Fusion.WEIGHTED and bool(weights)
        return cls(
            method=method,
            top_k=_integer(data.get("top_k"), TOP_K, "top_k"),
            score_threshold=None if threshold is None else _number(threshold, "score_threshold"),
            fusion=Fusion.WEIGHTED if weighted else Fusion.RECIPROCAL_RANK,
            vector_weight=_number(
                (weights.get("vector_setting") or {}).get("vector_weight", 0.7), "vector_weight"
            ),
            keyword_weight=_number(
                (weights.get("keyword_setting") or {}).get("keyword_weight", 0.3),
                "keyword_weight",
            ),
        )

    def replace(self, **changes: Any) -> RetrievalModel:
        """A copy with ``changes`` (``None`` values are ignored); validated again.

        Raises
        ------
        InvalidRetrievalModel
            A changed value is out of range.
        """
        given = {key: value for key, value in changes.items() if value is not None}
        if "method" in given:
            given["method"] = _enum(SearchMethod, given["method"], "search method")
        if "fusion" in given:
            given["fusion"] = _enum(Fusion, given["fusion"], "fusion")
        return dataclasses.replace(self, **given)


def _enum(kind: type[enum.StrEnum], value: object, what: str) -> Any:
    try:
        return kind(str(value))
    except ValueError:
        raise InvalidRetrievalModel(f"{what} {value!r} is not one of {', '.join(kind)}") from None


def _integer(value: object, default: int, what: str) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRetrievalModel(f"{what} must be an integer, got {value!r}")
    return value


def _number(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidRetrievalModel(f"{what} must be a number, got {value!r}")
    return float(value)
