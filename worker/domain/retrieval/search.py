"""Searching a dataset as its ``retrieval_model`` says: semantic, full-text or hybrid.

Hits are segments, not index nodes: a child chunk's hit is its parent segment's (with the best
score of its children), and only segments a user may retrieve count (segment enabled and
completed; document enabled, not archived, completed). The search asks its indexes for more
nodes until ``top_k`` such segments are found or the index has no more: ``top_k`` results
whenever the dataset has that many matching segments.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from worker.domain import vectors as vectors_module
from worker.domain.errors import PermanentError
from worker.domain.models import (
    ChildChunk,
    Dataset,
    Document,
    DocumentSegment,
    EmbeddingVector,
    IndexingStatus,
    IndexTechniqueType,
    SegmentStatus,
)
from worker.domain.pipeline import Pipeline
from worker.domain.ports import SearchHit
from worker.domain.retrieval import fusion
from worker.domain.retrieval.model import Fusion, RetrievalModel, SearchMethod

logger = logging.getLogger(__name__)

#: Nodes asked of an index at most, while looking for ``top_k`` retrievable segments.
MAX_NODES = vectors_module.MAX_TOP_K
#: How many times more nodes the next round asks for.
GROWTH = 4
#: Candidates each side of a hybrid search contributes, as a multiple of ``top_k``.
HYBRID_DEPTH = 2


class DatasetNotFound(PermanentError):
    """No dataset has that id."""


class EmbedderMismatch(PermanentError):
    """The query was embedded by another model than the dataset's vectors."""


@dataclass(frozen=True, kw_only=True)
class RetrievedSegment:
    """One result: a segment of a document and how well it matches."""

    segment_id: str
    document_id: str
    document_name: str
    dataset_id: str
    #: Position of the segment in its document (1 for the first).
    position: int
    content: str
    #: Answer of a Q&A segment (``content`` is then the question).
    answer: str | None
    #: Higher is better: cosine similarity (semantic), ``ts_rank`` in [0, 1) (full text), the
    #: fused score (hybrid).
    score: float


#: Nodes of one index for a query, best first: ``fetch(how_many)``.
Fetch = Callable[[int], list[SearchHit]]


def search(
    session: orm.Session,
    p: Pipeline,
    dataset_id: str,
    query: str,
    *,
    model: RetrievalModel | None = None,
    method: SearchMethod | str | None = None,
    top_k: int | None = None,
    score_threshold: float | None = None,
) -> list[RetrievedSegment]:
    """The dataset's segments matching ``query``, best first.

    Parameters
    ----------
    session:
        Open session (read only). Vector searches set ``hnsw.*`` settings for the rest of its
        transaction.
    model:
        How to search; by default the dataset's ``retrieval_model``. Economy datasets are
        searched by their keyword index whatever it says.
    method, top_k, score_threshold:
        Override the model's for this search.

    Raises
    ------
    DatasetNotFound
        No dataset has that id.
    InvalidRetrievalModel
        The dataset's ``retrieval_model`` cannot be read, or an override is out of range.
    EmbedderMismatch
        The dataset's vectors have another dimension than the query's: this process embeds
        with another model than the worker that built the index.
    TransientError, PermanentError
        What the embedder raises (an embedding API that is down).
    """
    dataset = _dataset(session, dataset_id)
    chosen = (model or RetrievalModel.from_dify(dataset.retrieval_model)).replace(
        method=method, top_k=top_k, score_threshold=score_threshold
    )
    if not query.strip():
        return []
    method = chosen.method
    if dataset.indexing_technique is not IndexTechniqueType.HIGH_QUALITY:
        method = SearchMethod.KEYWORD
    if method is SearchMethod.SEMANTIC:
        fetch = _semantic(session, p, dataset.id, query)
        return _single(session, dataset.id, fetch, chosen)
    if method is not SearchMethod.HYBRID:
        return _single(session, dataset.id, _full_text(session, p, dataset.id, query), chosen)
    return _hybrid(session, p, dataset.id, query, chosen)


def _dataset(session: orm.Session, dataset_id: str) -> Dataset:
    try:
        key = uuid.UUID(str(dataset_id))
    except ValueError:
        raise DatasetNotFound(f"dataset id {dataset_id!r} is not a UUID") from None
    dataset = session.get(Dataset, key)
    if dataset is None:
        raise DatasetNotFound(f"no dataset {dataset_id}")
    return dataset


def _semantic(session: orm.Session, p: Pipeline, dataset_id: uuid.UUID, query: str) -> Fetch:
    vector = p.embedder.embed([query]).vectors[0]
    collection = p.vectors.collection_name(str(dataset_id))

    def fetch(count: int) -> list[SearchHit]:
        hits = p.vectors.search(session, collection, vector, top_k=count, score_threshold=-1.0)
        if not hits:
            _check_dimension(session, collection, len(vector))
        return hits

    return fetch


def _check_dimension(session: orm.Session, collection: str, dimension: int) -> None:
    stored = session.scalar(
        sa.select(EmbeddingVector.dimension)
        .where(EmbeddingVector.collection == collection)
        .limit(1)
    )
    if stored is not None and stored != dimension:
        raise EmbedderMismatch(
            f"the dataset's vectors have {stored} dimensions and the query's {dimension}: "
            "this process embeds with another model than the worker that indexed it (set the "
            "same WORKER_EMBEDDING_* settings, or let runtime.setup() read them)"
        )


def _full_text(session: orm.Session, p: Pipeline, dataset_id: uuid.UUID, query: str) -> Fetch:
    return lambda count: p.keywords.search(session, str(dataset_id), query, top_k=count)


def _single(
    session: orm.Session, dataset_id: uuid.UUID, fetch: Fetch, model: RetrievalModel
) -> list[RetrievedSegment]:
    found = _segments(session, dataset_id, fetch, model.top_k, model.score_threshold)
    return [segment for segment, _ in found]


def _hybrid(
    session: orm.Session, p: Pipeline, dataset_id: uuid.UUID, query: str, model: RetrievalModel
) -> list[RetrievedSegment]:
    depth = min(model.top_k * HYBRID_DEPTH, MAX_NODES)
    # with reciprocal ranks the threshold applies to each side's own scores
    side_threshold = model.score_threshold if model.fusion is Fusion.RECIPROCAL_RANK else None
    semantic = _segments(
        session, dataset_id, _semantic(session, p, dataset_id, query), depth, side_threshold
    )
    text = _segments(
        session, dataset_id, _full_text(session, p, dataset_id, query), depth, side_threshold
    )
    by_id = {segment.segment_id: segment for segment, _ in (*semantic, *text)}
    if model.fusion is Fusion.WEIGHTED:
        scores = fusion.weighted(
            {s.segment_id: score for s, score in semantic},
            {s.segment_id: score for s, score in text},
            vector_weight=model.vector_weight,
            keyword_weight=model.keyword_weight,
        )
        if model.score_threshold is not None:
            scores = {k: v for k, v in scores.items() if v >= model.score_threshold}
    else:
        scores = fusion.reciprocal_rank(
            [s.segment_id for s, _ in semantic], [s.segment_id for s, _ in text]
        )
    return [
        _with_score(by_id[key], scores[key]) for key in fusion.best_first(scores)[: model.top_k]
    ]


def _segments(
    session: orm.Session,
    dataset_id: uuid.UUID,
    fetch: Fetch,
    wanted: int,
    threshold: float | None,
) -> list[tuple[RetrievedSegment, float]]:
    """The first ``wanted`` retrievable segments of the nodes ``fetch`` returns, best first,
    each with the best score of its nodes; asking for more nodes while too few are found."""
    count = wanted
    while True:
        hits = fetch(count)
        scored = [hit for hit in hits if threshold is None or hit.score >= threshold]
        found = _to_segments(session, dataset_id, scored)
        exhausted = len(hits) < count or len(scored) < len(hits) or count >= MAX_NODES
        if len(found) >= wanted or exhausted:
            return [(segment, segment.score) for segment in found[:wanted]]
        count = min(count * GROWTH, MAX_NODES)


def _to_segments(
    session: orm.Session, dataset_id: uuid.UUID, hits: Sequence[SearchHit]
) -> list[RetrievedSegment]:
    """The retrievable segments of ``hits`` (segments or child chunks), in the order of their
    best hit."""
    if not hits:
        return []
    nodes = [hit.node_id for hit in hits]
    owners = dict(
        session.execute(
            sa.union_all(
                sa.select(DocumentSegment.index_node_id, DocumentSegment.id).where(
                    DocumentSegment.dataset_id == dataset_id,
                    DocumentSegment.index_node_id.in_(nodes),
                ),
                sa.select(ChildChunk.index_node_id, ChildChunk.segment_id).where(
                    ChildChunk.dataset_id == dataset_id, ChildChunk.index_node_id.in_(nodes)
                ),
            )
        ).all()
    )
    rows = {row.id: row for row in _retrievable(session, set(owners.values()))}
    found: dict[uuid.UUID, RetrievedSegment] = {}
    for hit in hits:
        segment_id = owners.get(hit.node_id)
        if segment_id is None or segment_id in found or segment_id not in rows:
            continue
        found[segment_id] = _retrieved(rows[segment_id], dataset_id, hit.score)
    return list(found.values())


#: id, document id, document name, position, content, answer of a segment.
SegmentRow = sa.Row[uuid.UUID, uuid.UUID, str, int, str, str | None]


def _retrievable(session: orm.Session, segment_ids: set[uuid.UUID]) -> Sequence[SegmentRow]:
    if not segment_ids:
        return []
    query = (
        sa.select(
            DocumentSegment.id,
            DocumentSegment.document_id,
            Document.name,
            DocumentSegment.position,
            DocumentSegment.content,
            DocumentSegment.answer,
        )
        .join(Document, Document.id == DocumentSegment.document_id)
        .where(
            DocumentSegment.id.in_(segment_ids),
            DocumentSegment.enabled.is_(True),
            DocumentSegment.status == SegmentStatus.COMPLETED,
            Document.enabled.is_(True),
            Document.archived.is_(False),
            Document.indexing_status == IndexingStatus.COMPLETED,
        )
    )
    return session.execute(query).all()


def _retrieved(row: SegmentRow, dataset_id: uuid.UUID, score: float) -> RetrievedSegment:
    return RetrievedSegment(
        segment_id=str(row.id),
        document_id=str(row.document_id),
        document_name=row.name,
        dataset_id=str(dataset_id),
        position=row.position,
        content=row.content,
        answer=row.answer,
        score=score,
    )


def _with_score(segment: RetrievedSegment, score: float) -> RetrievedSegment:
    return dataclasses.replace(segment, score=score)
