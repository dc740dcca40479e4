"""Ports: what the domain needs from the outside world, as Protocols and plain values.

Adapters live beside the services (``storage``, ``extract``, ``embedding``, ``vectors``,
``keywords``); the runtime builds them from settings and hands them to the services.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


class Storage(Protocol):
    """Object storage for uploaded files (Dify's ``storage``)."""

    def load(self, key: str) -> bytes:
        """The file's bytes. Raises ``PermanentError`` if it does not exist or cannot be read."""
        ...

    def save(self, key: str, data: bytes) -> None:
        """Write (or overwrite) the file."""
        ...

    def delete(self, key: str) -> None:
        """Remove the file; a missing file is not an error."""
        ...

    def exists(self, key: str) -> bool:
        """Whether the file exists."""
        ...


@dataclass(frozen=True, kw_only=True)
class EmbeddingBatch:
    """Vectors for a batch of texts, in the order of the texts, and their tokens."""

    vectors: list[list[float]]
    #: Tokens of the texts (the embedding cache counts cached texts too).
    tokens: int
    #: Tokens of each text, in the order of the texts, when the embedder knows them (an API
    #: reports one total per request).
    text_tokens: list[int] | None = None


class Embedder(Protocol):
    """Turns texts into vectors (Dify's embedding model)."""

    #: Provider name stored with cached embeddings and collection bindings (``local``, ``openai``).
    provider: str
    #: Model name.
    model: str

    @property
    def dimension(self) -> int:
        """Length of every vector this embedder returns."""
        ...

    def embed(self, texts: Sequence[str]) -> EmbeddingBatch:
        """Embed ``texts``. Raises ``TransientError`` (timeouts, 429, 5xx) or
        ``PermanentError`` (other 4xx, malformed replies)."""
        ...


@dataclass(frozen=True, kw_only=True)
class VectorItem:
    """One indexed node: a segment (or child chunk, or annotation) and its vector."""

    node_id: str
    content: str
    embedding: Sequence[float]
    document_id: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class SearchHit:
    """One result of a similarity or keyword search; ``score`` is higher for better matches
    (cosine similarity in [-1, 1] for vectors)."""

    node_id: str
    content: str
    score: float
    document_id: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
