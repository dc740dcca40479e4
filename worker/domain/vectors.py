"""Vector collections in PostgreSQL (pgvector), in place of Dify's external vector database.

Every collection lives in the one table ``embedding_vectors``, keyed by (collection, node id).
Datasets may use embedding models of different dimensions, while pgvector's HNSW index needs a
fixed one; so the column has no dimension, each row records its own, and the store creates one
partial HNSW index per dimension the first time it writes that dimension (up to
:data:`HNSW_MAX_DIMENSION`; larger vectors are searched exactly). Searches use the same
``CAST(embedding AS vector(<d>))`` expression and ``dimension = <d>`` predicate, so the planner can
use that index.
"""

from __future__ import annotations

import json
import logging
import math
import typing
import uuid
from collections.abc import Sequence
from typing import Any, LiteralString

import sqlalchemy as sa
from sqlalchemy import orm

from worker.domain import errors, sql
from worker.domain.models import EmbeddingVector
from worker.domain.models.index import HNSW_INDEX_PREFIX, HNSW_MAX_DIMENSION
from worker.domain.ports import SearchHit, VectorItem

logger = logging.getLogger(__name__)

#: Largest dimension pgvector's ``vector`` type accepts.
MAX_DIMENSION = 16000
#: Most hits one search returns.
MAX_TOP_K = 10000
#: pgvector's default length of the HNSW candidate list; a search asks for at least ``top_k``.
HNSW_EF_SEARCH = 40
#: Longest HNSW candidate list pgvector accepts.
HNSW_MAX_EF_SEARCH = 1000
#: Prefix of Dify's dataset collection names.
COLLECTION_PREFIX = "Vector_index"

__all__ = ["HNSW_MAX_DIMENSION", "PgVectorStore", "collection_name"]


def collection_name(dataset_id: str) -> str:
    """Dify's collection of a dataset: ``Vector_index_<dataset id, - replaced by _>_Node``."""
    return f"{COLLECTION_PREFIX}_{dataset_id.replace('-', '_')}_Node"


def _with_dimension(name: str, dimension: int) -> str:
    """The named SQL block with its ``{dimension}`` placeholders replaced by the integer."""
    query: LiteralString = sql.queries()[name]
    return query.replace("{dimension}", str(int(dimension)))


def _check_dimension(dimension: int) -> None:
    if not 1 <= dimension <= MAX_DIMENSION:
        raise errors.PermanentError(
            f"vector dimension {dimension} is outside pgvector's range 1..{MAX_DIMENSION}"
        )


def vector_literal(embedding: Sequence[float]) -> str:
    """pgvector's text form ``[1.0,2.5,...]``. Raises ``PermanentError`` on NaN or infinity."""
    values = [float(value) for value in embedding]
    if not all(math.isfinite(value) for value in values):
        raise errors.PermanentError("embedding contains NaN or infinite values")
    return "[" + ",".join(repr(value) for value in values) + "]"


def _document_uuid(document_id: str | None) -> uuid.UUID | None:
    if document_id is None:
        return None
    try:
        return uuid.UUID(document_id)
    except ValueError as exc:
        raise errors.PermanentError(f"document id is not a UUID: {document_id!r}") from exc


def _row(collection: str, item: VectorItem) -> dict[str, Any]:
    try:
        metadata = json.dumps(dict(item.metadata))
    except (TypeError, ValueError) as exc:
        raise errors.PermanentError(
            f"metadata of node {item.node_id!r} is not JSON: {exc}"
        ) from exc
    return {
        "collection": collection,
        "node_id": item.node_id,
        "document_id": _document_uuid(item.document_id),
        "content": item.content,
        "metadata": metadata,
        "dimension": len(item.embedding),
        "embedding": vector_literal(item.embedding),
    }


class PgVectorStore:
    """The ``embedding_vectors`` table. Every method works in the caller's open session."""

    #: See :func:`collection_name`.
    collection_name = staticmethod(collection_name)

    def upsert(self, session: orm.Session, collection: str, items: Sequence[VectorItem]) -> int:
        """Insert nodes, or replace those the collection has already; returns how many.

        The first write of a dimension also creates its HNSW index, in the caller's transaction
        (brief: the index covers no row of that dimension yet).

        Parameters
        ----------
        session:
            Open session; the caller commits.
        collection:
            Collection name (:func:`collection_name` for a dataset).
        items:
            Nodes with embeddings of one dimension. A node given twice keeps the last.

        Raises
        ------
        PermanentError
            Dimensions differ, are out of range, a vector has NaN, a document id is not a UUID
            or metadata is not JSON.
        """
        if not items:
            return 0
        dimensions = {len(item.embedding) for item in items}
        if len(dimensions) != 1:
            raise errors.PermanentError(
                f"vectors of one upsert must share a dimension, got {sorted(dimensions)}"
            )
        (dimension,) = dimensions
        _check_dimension(dimension)
        rows = {item.node_id: _row(collection, item) for item in items}
        self.ensure_index(session, dimension)
        session.execute(sa.text(sql.queries()["vector_upsert"]), list(rows.values()))
        return len(rows)

    def ensure_index(self, session: orm.Session, dimension: int) -> bool:
        """Create the HNSW index of ``dimension`` unless it exists; returns whether it exists.

        ``CREATE INDEX`` locks the table against writes, even with ``IF NOT EXISTS``, so the
        catalog is checked first; concurrent first writers then queue on an advisory lock.
        """
        if dimension > HNSW_MAX_DIMENSION:
            return False
        name = f"{HNSW_INDEX_PREFIX}{int(dimension)}"
        queries = sql.queries()
        exists = sa.text(queries["vector_index_exists"])
        if session.execute(exists, {"name": name}).scalar_one():
            return True
        session.execute(sa.text(queries["vector_index_lock"]), {"dimension": dimension})
        session.execute(sa.text(_with_dimension("vector_index_create", dimension)))
        logger.info(
            "created HNSW index %s",
            name,
            extra={"action": "vector_index_created", "dimension": dimension},
        )
        return True

    def delete_nodes(self, session: orm.Session, collection: str, node_ids: Sequence[str]) -> int:
        """Remove nodes of a collection; returns how many rows were deleted."""
        if not node_ids:
            return 0
        return self._delete(
            session,
            EmbeddingVector.collection == collection,
            EmbeddingVector.node_id.in_(list(node_ids)),
        )

    def delete_document(self, session: orm.Session, collection: str, document_id: str) -> int:
        """Remove every node of one document; returns how many rows were deleted."""
        return self._delete(
            session,
            EmbeddingVector.collection == collection,
            EmbeddingVector.document_id == _document_uuid(document_id),
        )

    def delete_collection(self, session: orm.Session, collection: str) -> int:
        """Remove a whole collection; returns how many rows were deleted."""
        return self._delete(session, EmbeddingVector.collection == collection)

    def delete_where(self, session: orm.Session, collection: str, key: str, value: str) -> int:
        """Remove the nodes whose metadata ``key`` equals ``value`` (annotations by
        ``annotation_id``); returns how many rows were deleted."""
        return self._delete(
            session,
            EmbeddingVector.collection == collection,
            EmbeddingVector.metadata_[key].astext == value,
        )

    def count(self, session: orm.Session, collection: str, document_id: str | None = None) -> int:
        """Number of nodes in the collection, or of one document in it."""
        query = sa.select(sa.func.count()).where(EmbeddingVector.collection == collection)
        if document_id is not None:
            query = query.where(EmbeddingVector.document_id == _document_uuid(document_id))
        return int(session.execute(query).scalar_one())

    def search(
        self,
        session: orm.Session,
        collection: str,
        embedding: Sequence[float],
        *,
        top_k: int = 4,
        score_threshold: float = 0.0,
        document_ids: Sequence[str] | None = None,
    ) -> list[SearchHit]:
        """The ``top_k`` nodes most similar to ``embedding``, best first (ties by node id).

        Only nodes of the query's dimension are compared. The score is the cosine similarity
        (``1 -`` cosine distance); hits below ``score_threshold`` are dropped after the
        ``top_k`` nearest are found, as Dify does. The HNSW index is scanned iteratively in
        relaxed order (settings for the rest of the transaction) and the rows re-sorted; when
        it still returns fewer than ``top_k`` rows (dead tuples, a small collection in a big
        table) the collection is searched exactly: ``top_k`` hits whenever it has that many
        nodes.

        Parameters
        ----------
        top_k:
            Hits wanted, at most :data:`MAX_TOP_K`.
        document_ids:
            Only nodes of these documents.

        Raises
        ------
        PermanentError
            The dimension is out of range, the vector has NaN or ``top_k`` is too large.
        """
        dimension = len(embedding)
        _check_dimension(dimension)
        if top_k > MAX_TOP_K:
            raise errors.PermanentError(f"top_k {top_k} is over {MAX_TOP_K}")
        if top_k <= 0 or (document_ids is not None and not document_ids):
            return []
        params = {
            "collection": collection,
            "embedding": vector_literal(embedding),
            "document_ids": None
            if document_ids is None
            else [str(_document_uuid(d)) for d in document_ids],
            "top_k": top_k,
        }
        rows: Sequence[sa.Row[Any]] = ()
        if dimension <= HNSW_MAX_DIMENSION:
            ef_search = min(max(top_k, HNSW_EF_SEARCH), HNSW_MAX_EF_SEARCH)
            session.execute(
                sa.text(sql.queries()["vector_scan_settings"]), {"ef_search": ef_search}
            )
            rows = session.execute(
                sa.text(_with_dimension("vector_search", dimension)), params
            ).all()
        if len(rows) < top_k:
            exact = sa.text(_with_dimension("vector_search_exact", dimension))
            rows = session.execute(exact, params).all()
        hits = [
            SearchHit(
                node_id=row.node_id,
                content=row.content,
                score=1.0 - float(row.distance),
                document_id=row.document_id,
                metadata=row.metadata,
            )
            for row in rows
        ]
        # A zero vector has no direction: its cosine distance is NaN, never a match.
        return [hit for hit in hits if hit.score >= score_threshold]

    @staticmethod
    def _delete(session: orm.Session, *conditions: sa.ColumnElement[bool]) -> int:
        result = session.execute(sa.delete(EmbeddingVector).where(*conditions))
        return typing.cast("sa.CursorResult[Any]", result).rowcount
