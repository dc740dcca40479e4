"""Reading Dify's retrieval_model and fusing hybrid results (no database)."""

from __future__ import annotations

import pytest

from worker.domain.retrieval import fusion
from worker.domain.retrieval.model import (
    Fusion,
    InvalidRetrievalModel,
    RetrievalModel,
    SearchMethod,
)


def test_no_retrieval_model_is_difys_default() -> None:
    model = RetrievalModel.from_dify(None)

    assert (model.method, model.top_k, model.score_threshold) == (SearchMethod.SEMANTIC, 4, None)


def test_difys_hybrid_model_with_weights_and_threshold() -> None:
    model = RetrievalModel.from_dify(
        {
            "search_method": "hybrid_search",
            "reranking_enable": False,
            "reranking_mode": "weighted_score",
            "weights": {
                "weight_type": "customized",
                "vector_setting": {"vector_weight": 0.6, "embedding_model_name": "m"},
                "keyword_setting": {"keyword_weight": 0.4},
            },
            "top_k": 7,
            "score_threshold_enabled": True,
            "score_threshold": 0.25,
        }
    )

    assert model == RetrievalModel(
        method=SearchMethod.HYBRID, top_k=7, score_threshold=0.25, fusion=Fusion.WEIGHTED,
        vector_weight=0.6, keyword_weight=0.4,
    )  # fmt: skip


def test_a_threshold_that_is_not_enabled_is_ignored_and_a_rerank_model_becomes_rrf() -> None:
    model = RetrievalModel.from_dify(
        {
            "search_method": "hybrid_search",
            "reranking_enable": True,
            "reranking_mode": "reranking_model",
            "reranking_model": {"reranking_provider_name": "cohere"},
            "score_threshold_enabled": False,
            "score_threshold": 0.9,
        }
    )

    assert (model.fusion, model.score_threshold) == (Fusion.RECIPROCAL_RANK, None)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"search_method": "vector"}, "search_method 'vector' is not one of"),
        ({"top_k": 0}, "top_k 0 is outside 1..1000"),
        ({"top_k": True}, "top_k must be an integer"),
        ({"score_threshold_enabled": True, "score_threshold": "high"}, "must be a number"),
        (
            {
                "reranking_mode": "weighted_score",
                "weights": {"vector_setting": {"vector_weight": -1}},
            },
            "must not be negative",
        ),
    ],
)
def test_unusable_models_are_refused_with_the_reason(
    value: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidRetrievalModel, match=message):
        RetrievalModel.from_dify(value)


def test_overrides_are_validated_and_none_keeps_the_value() -> None:
    model = RetrievalModel(top_k=3)

    assert model.replace(top_k=None, method="full_text_search").method is SearchMethod.FULL_TEXT
    assert model.replace(top_k=None).top_k == 3
    with pytest.raises(InvalidRetrievalModel, match="top_k 5000"):
        model.replace(top_k=5000)


def test_weighted_fusion_scales_the_weights_and_counts_a_missing_side_as_zero() -> None:
    scores = fusion.weighted(
        {"a": 0.8, "b": 0.4}, {"b": 1.0, "c": 0.5}, vector_weight=3, keyword_weight=1
    )

    assert scores == pytest.approx({"a": 0.6, "b": 0.55, "c": 0.125})
    assert fusion.best_first(scores) == ["a", "b", "c"]


def test_reciprocal_rank_fusion_puts_what_both_sides_found_first() -> None:
    scores = fusion.reciprocal_rank(["a", "b", "c"], ["b", "d", "a"])

    assert fusion.best_first(scores) == ["b", "a", "d", "c"]
    assert fusion.reciprocal_rank(["x"], ["x"]) == {"x": pytest.approx(1.0)}
    assert fusion.best_first({"y": 0.5, "x": 0.5}) == ["x", "y"]
