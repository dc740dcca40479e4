"""Retrieval: searching a dataset's segments as its ``retrieval_model`` says.

``search`` runs semantic (pgvector), full-text (``keyword_index``) or hybrid searches and returns
segments; ``RetrievalModel`` reads Dify's ``retrieval_model`` JSON. App code calls it through
:func:`worker.api.search`, which supplies the runtime's embedder and a session.
"""

from __future__ import annotations

from worker.domain.retrieval.model import (
    Fusion,
    InvalidRetrievalModel,
    RetrievalModel,
    SearchMethod,
)
from worker.domain.retrieval.search import (
    DatasetNotFound,
    EmbedderMismatch,
    RetrievedSegment,
    search,
)

__all__ = [
    "DatasetNotFound",
    "EmbedderMismatch",
    "Fusion",
    "InvalidRetrievalModel",
    "RetrievalModel",
    "RetrievedSegment",
    "SearchMethod",
    "search",
]
