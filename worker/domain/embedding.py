"""Embedders: a local hashing model, an OpenAI-compatible HTTP client, and the ``embeddings`` cache.

All three implement :class:`worker.domain.ports.Embedder`.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import math
import re
import struct
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy import orm
from sqlalchemy.dialects.postgresql import insert

from worker.domain import chunking, errors, keywords
from worker.domain.http import HTTPAdapter, json_object, send
from worker.domain.models import Embedding
from worker.domain.ports import Embedder, EmbeddingBatch

logger = logging.getLogger(__name__)

#: Dimension of :class:`LocalEmbedder` vectors unless configured.
LOCAL_DIMENSION = 256
#: Texts per request of :class:`OpenAIEmbedder` unless configured.
OPENAI_BATCH_SIZE = 32
#: Seconds :class:`OpenAIEmbedder` waits for a reply unless configured.
OPENAI_TIMEOUT = 30.0

#: Runs of Han characters, kana and hangul (segmented by jieba, plus character bigrams).
_CJK_RUN = re.compile(
    "[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\U00020000-\U0002fa1f]+"
)
#: Words of other scripts: letters and digits.
_WORD = re.compile(r"[^\W_]+")
#: Weight of a stop word ("the", "的", ...) as a single word; its pairs keep full weight.
STOP_WORD_WEIGHT = 0.3


def text_hash(text: str) -> str:
    """Hex SHA-256 of the UTF-8 text: the key of a cached embedding (Dify's ``hash``)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class LocalEmbedder:
    """Deterministic, offline embeddings by signed feature hashing; no model to download.

    Features are the words of the text (lowercased words of Latin and other alphabetic text,
    jieba words of Chinese text), consecutive word pairs, and character bigrams of CJK runs.
    Each feature adds ``±(1 + log tf)`` (less for stop words) to one component chosen, with the
    sign, by its BLAKE2b hash (stable across processes and machines); the vector is then
    L2-normalised. Texts
    sharing words and phrases get a high cosine similarity. A text without any word gives the
    zero vector. ``tokens`` counts the words hashed (not the pairs and bigrams).
    """

    provider = "local"

    def __init__(self, dimension: int = LOCAL_DIMENSION) -> None:
        if dimension < 1:
            raise ValueError(f"dimension must be positive, got {dimension}")
        self._dimension = dimension
        self.model = f"hashing-{dimension}"

    @property
    def dimension(self) -> int:
        """Length of every vector, as configured."""
        return self._dimension

    def embed(self, texts: Sequence[str]) -> EmbeddingBatch:
        """Embed ``texts``; never fails."""
        vectors: list[list[float]] = []
        counts: list[int] = []
        for text in texts:
            features, words = _features(text)
            vectors.append(self._vector(features))
            counts.append(words)
        return EmbeddingBatch(vectors=vectors, tokens=sum(counts), text_tokens=counts)

    def _vector(self, features: dict[str, float]) -> list[float]:
        vector = [0.0] * self._dimension
        for feature, weight in features.items():
            digest = hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest()
            value = int.from_bytes(digest, "little")
            sign = -1.0 if value >> 63 else 1.0
            vector[value % self._dimension] += sign * weight
        norm = math.sqrt(sum(component * component for component in vector))
        return [component / norm for component in vector] if norm else vector


def _features(text: str) -> tuple[dict[str, float], int]:
    """The weighted features of ``text`` and its number of words."""
    normalised = keywords.normalise(text)
    words: list[str] = []
    bigrams: Counter[str] = Counter()
    position = 0
    for run in _CJK_RUN.finditer(normalised):
        words.extend(_WORD.findall(normalised, position, run.start()))
        chars = run.group()
        words.extend(keywords.segment(chars))
        bigrams.update(chars[i : i + 2] for i in range(max(len(chars) - 1, 1)))
        position = run.end()
    words.extend(_WORD.findall(normalised, position))
    features = {
        "w:" + word: _tf(count) * (STOP_WORD_WEIGHT if word in keywords.STOP_WORDS else 1.0)
        for word, count in Counter(words).items()
    }
    pairs = Counter(itertools.pairwise(words))
    features.update((f"p:{first} {second}", _tf(count)) for (first, second), count in pairs.items())
    features.update(("c:" + bigram, _tf(count)) for bigram, count in bigrams.items())
    return features, len(words)


def _tf(count: int) -> float:
    """Sublinear term frequency."""
    return 1.0 + math.log(count)


class OpenAIEmbedder(HTTPAdapter):
    """Client of an OpenAI-compatible ``/embeddings`` endpoint (OpenAI, Azure-style gateways,
    vLLM, Ollama, LocalAI, ...).

    Parameters
    ----------
    base_url:
        API root, such as ``https://api.openai.com/v1``; requests go to ``{base_url}/embeddings``.
    api_key:
        Sent as a bearer token when given.
    model:
        Model name sent with every request.
    batch_size:
        Texts per request.
    timeout:
        Seconds to wait for each request (connect, read, write).
    dimension:
        Expected vector length; replies of another length are rejected. When ``None`` it is
        learnt from the first reply, and :attr:`dimension` raises ``RuntimeError`` until then.
        It is not sent to the API (not every model accepts ``dimensions``).
    client:
        HTTP client to use (and not close); by default one is created and closed by
        :meth:`close`.
    """

    provider = "openai"

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        model: str,
        *,
        batch_size: int = OPENAI_BATCH_SIZE,
        timeout: float = OPENAI_TIMEOUT,
        dimension: int | None = None,
        client: httpx.Client | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        super().__init__(timeout=timeout, client=client)
        self.model = model
        self._url = base_url.rstrip("/") + "/embeddings"
        self._what = f"embedding endpoint {self._url}"
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._batch_size = batch_size
        self._timeout = timeout
        self._dimension = dimension

    @property
    def dimension(self) -> int:
        """Length of every vector: as configured, or learnt from the first reply.

        Raises
        ------
        RuntimeError
            Not configured and nothing embedded yet.
        """
        if self._dimension is None:
            raise RuntimeError(
                f"the dimension of {self.model!r} is known after the first embed() call"
            )
        return self._dimension

    def embed(self, texts: Sequence[str]) -> EmbeddingBatch:
        """Embed ``texts``, ``batch_size`` per request.

        Raises
        ------
        TransientError
            Timeout, connection failure, 408, 429 or 5xx reply.
        PermanentError
            Other non-2xx reply (with its status and error message), malformed reply, or
            vectors of another dimension.
        """
        vectors: list[list[float]] = []
        tokens = 0
        for batch in _batches(texts, self._batch_size):
            response = send(
                self._client,
                "POST",
                self._url,
                what=self._what,
                headers=self._headers,
                json={"model": self.model, "input": batch},
                timeout=self._timeout,
            )
            batch_vectors, batch_tokens = _parse_reply(
                json_object(response, self._what), len(batch)
            )
            self._check_dimension(batch_vectors)
            vectors.extend(batch_vectors)
            tokens += batch_tokens
        return EmbeddingBatch(vectors=vectors, tokens=tokens)

    def _check_dimension(self, vectors: list[list[float]]) -> None:
        lengths = {len(vector) for vector in vectors}
        expected = self._dimension if self._dimension is not None else next(iter(lengths), None)
        if lengths - {expected}:
            raise errors.PermanentError(
                f"embedding model {self.model!r} returned vectors of length {sorted(lengths)}, "
                f"expected {expected}"
            )
        self._dimension = expected


def _batches(texts: Sequence[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(texts), size):
        yield list(texts[start : start + size])


def _parse_reply(body: dict[str, Any], count: int) -> tuple[list[list[float]], int]:
    """The vectors of a reply in input order (by ``index``) and its ``usage.total_tokens``."""
    data = body.get("data")
    if not isinstance(data, list) or len(data) != count:
        raise errors.PermanentError(f"embedding reply must have a 'data' list of {count} items")
    by_index = dict(_indexed_vector(item) for item in data)
    if sorted(by_index) != list(range(count)):
        raise errors.PermanentError("embedding reply indexes do not match the inputs")
    usage = body.get("usage")
    tokens = usage.get("total_tokens", 0) if isinstance(usage, dict) else 0
    if not isinstance(tokens, int) or isinstance(tokens, bool):
        raise errors.PermanentError("embedding reply has a non-integer usage.total_tokens")
    return [by_index[index] for index in range(count)], tokens


def _indexed_vector(item: Any) -> tuple[int, list[float]]:
    index = item.get("index") if isinstance(item, dict) else None
    vector = item.get("embedding") if isinstance(item, dict) else None
    if not isinstance(index, int) or not isinstance(vector, list) or not vector:
        raise errors.PermanentError("embedding reply item needs an 'index' and an 'embedding'")
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in vector):
        raise errors.PermanentError("embedding reply vector has non-numeric components")
    return index, [float(v) for v in vector]


#: Opens a session in a transaction of its own (committed on exit), never the job's: see
#: ``worker.domain.adapters``.
SessionFactory = Callable[[], AbstractContextManager[orm.Session]]


class CachedEmbedder:
    """An embedder behind the ``embeddings`` table: each text is embedded once per model.

    Rows are keyed by (model, SHA-256 of the text, provider) and hold the vector (little-endian
    float32) and the text's tokens. Lookups and writes run in short transactions of their own,
    never open during the inner embedder's HTTP call. Vectors are returned as float32 values
    whether they came from the cache or not, so a text always gets the same vector; and tokens
    count every text, cached or not, so a document indexed again (or the same text in another
    dataset) counts the same tokens as the first time.
    """

    def __init__(self, inner: Embedder, session_factory: SessionFactory) -> None:
        self.inner = inner
        self.provider = inner.provider
        self.model = inner.model
        self._session_factory = session_factory
        self._cached_dimension: int | None = None

    @property
    def dimension(self) -> int:
        """The inner embedder's dimension; or, while the inner one does not know it yet (an
        :class:`OpenAIEmbedder` before its first call), that of the vectors read from the cache.

        Raises
        ------
        RuntimeError
            Neither knows it yet.
        """
        try:
            return self.inner.dimension
        except RuntimeError:
            if self._cached_dimension is None:
                raise
            return self._cached_dimension

    def embed(self, texts: Sequence[str]) -> EmbeddingBatch:
        """Embed ``texts``, asking the inner embedder (in one batch) only for uncached ones.

        ``tokens`` counts every text (a text given twice, twice), from the cache for cached
        ones. A cached row of an earlier version without a token count is embedded again once,
        to learn it (its vector stays). Raises what the inner embedder raises.
        """
        hashes = [text_hash(text) for text in texts]
        found = self._load(set(hashes)) if hashes else {}
        missing = {
            digest: text
            for digest, text in zip(hashes, texts, strict=True)
            if digest not in found or found[digest][1] is None
        }
        if missing:
            found.update(self._embed_missing(missing, found))
        vectors = [list(found[digest][0]) for digest in hashes]
        counts = [found[digest][1] or 0 for digest in hashes]
        return EmbeddingBatch(vectors=vectors, tokens=sum(counts), text_tokens=counts)

    def _embed_missing(
        self, missing: dict[str, str], found: dict[str, tuple[list[float], int | None]]
    ) -> dict[str, tuple[list[float], int | None]]:
        """Embed ``missing`` texts (by hash), store them, and return their vectors and tokens."""
        batch = self.inner.embed(list(missing.values()))
        if len(batch.vectors) != len(missing):
            raise errors.PermanentError(
                f"{self.model!r} returned {len(batch.vectors)} vectors for {len(missing)} texts"
            )
        counts = batch.text_tokens or apportion(batch.tokens, list(missing.values()))
        learnt: dict[str, tuple[list[float], int | None]] = {}
        blobs: dict[str, tuple[bytes, int]] = {}
        for digest, vector, count in zip(missing, batch.vectors, counts, strict=True):
            # a row cached without tokens keeps its vector (a text always gets the same one)
            blob = _pack(found[digest][0] if digest in found else vector)
            blobs[digest] = (blob, count)
            learnt[digest] = (_unpack(blob), count)
        self._store(blobs)
        return learnt

    def _load(self, hashes: set[str]) -> dict[str, tuple[list[float], int | None]]:
        query = sa.select(Embedding.hash, Embedding.embedding, Embedding.tokens).where(
            Embedding.model_name == self.model,
            Embedding.provider_name == self.provider,
            Embedding.hash.in_(sorted(hashes)),
        )
        with self._session_factory() as session:
            rows = session.execute(query).all()
        found: dict[str, tuple[list[float], int | None]] = {}
        for digest, blob, tokens in rows:
            if not blob or len(blob) % 4:
                logger.warning(
                    "ignoring a cached embedding that is not float32",
                    extra={"action": "embedding_cache_unreadable", "hash": digest},
                )
                continue
            found[digest] = (_unpack(blob), tokens)
            self._cached_dimension = len(found[digest][0])
        return found

    def _store(self, blobs: dict[str, tuple[bytes, int]]) -> None:
        """Insert rows; a row that exists (cached without tokens, or inserted meanwhile by
        another process) keeps its vector and gets its tokens if it had none."""
        rows = [
            {
                "model_name": self.model,
                "provider_name": self.provider,
                "hash": digest,
                "embedding": blob,
                "tokens": tokens,
            }
            for digest, (blob, tokens) in blobs.items()
        ]
        excluded = insert(Embedding).excluded
        statement = insert(Embedding).on_conflict_do_update(
            index_elements=["model_name", "hash", "provider_name"],
            set_={"tokens": sa.func.coalesce(Embedding.tokens, excluded.tokens)},
        )
        with self._session_factory() as session:
            session.execute(statement, rows)


def apportion(total: int, texts: Sequence[str]) -> list[int]:
    """Split a request's token ``total`` over its ``texts`` in proportion to their estimated
    tokens (:func:`worker.domain.chunking.count_tokens`), by largest remainder: the parts add up
    to ``total`` exactly, so a document counts what its requests cost."""
    if not texts:
        return []
    weights = [max(chunking.count_tokens(text), 1) for text in texts]
    whole = sum(weights)
    shares = [total * weight / whole for weight in weights]
    parts = [math.floor(share) for share in shares]
    by_remainder = sorted(range(len(texts)), key=lambda i: shares[i] - parts[i], reverse=True)
    for index in by_remainder[: total - sum(parts)]:
        parts[index] += 1
    return parts


def _pack(vector: Sequence[float]) -> bytes:
    try:
        return struct.pack(f"<{len(vector)}f", *vector)
    except (struct.error, OverflowError) as exc:
        raise errors.PermanentError(f"embedding does not fit float32: {exc}") from exc


def _unpack(blob: bytes) -> list[float]:
    return list(struct.unpack(f"<{len(blob) // 4}f", blob))
