"""Merging the semantic and full-text result lists of a hybrid search (no database, no model)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

#: Rank offset of reciprocal rank fusion (Cormack et al.: 60 works across collections).
RRF_K = 60


def weighted(
    vector: Mapping[str, float],
    text: Mapping[str, float],
    *,
    vector_weight: float,
    keyword_weight: float,
) -> dict[str, float]:
    """``vector_weight * similarity + keyword_weight * text rank`` per result (a side that did
    not find it counts 0), the weights scaled to add up to 1: Dify's weighted score."""
    total = vector_weight + keyword_weight
    return {
        key: (vector_weight * vector.get(key, 0.0) + keyword_weight * text.get(key, 0.0)) / total
        for key in {*vector, *text}
    }


def reciprocal_rank(*rankings: Sequence[str]) -> dict[str, float]:
    """Reciprocal rank fusion of best-first lists: ``sum(1 / (RRF_K + rank))`` per result,
    scaled so that the first of every list scores 1."""
    if not rankings:
        return {}
    best = len(rankings) / (RRF_K + 1)
    fused: dict[str, float] = {}
    for ranking in rankings:
        for rank, key in enumerate(ranking, start=1):
            fused[key] = fused.get(key, 0.0) + 1.0 / (RRF_K + rank)
    return {key: score / best for key, score in fused.items()}


def best_first(scores: Mapping[str, float]) -> list[str]:
    """The keys by score, best first; ties by key, so that the order is stable."""
    return sorted(scores, key=lambda key: (-scores[key], key))
