"""Vector store, embedding cache and keyword index against a real migrated PostgreSQL."""

from __future__ import annotations

import contextlib
import json
import random
import struct
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
import sqlalchemy as sa
from pytest_httpserver import HTTPServer
from sqlalchemy import orm
from werkzeug import Request, Response

from tests import factories
from worker.domain.embedding import (
    CachedEmbedder,
    LocalEmbedder,
    OpenAIEmbedder,
    apportion,
    text_hash,
)
from worker.domain.errors import PermanentError
from worker.domain.keywords import KeywordIndex
from worker.domain.models import DocumentSegment, Embedding, EmbeddingVector
from worker.domain.ports import EmbeddingBatch, VectorItem
from worker.domain.vectors import PgVectorStore, collection_name

DIMENSION = 64
COLLECTION = "Vector_index_test_Node"
#: Chinese text is written with full-width commas (spelt out: ruff flags the character).
COMMA = "\uff0c"


@pytest.fixture
def httpserver(httpserver_ipv4: HTTPServer) -> HTTPServer:
    """pytest-httpserver's server, listening on 127.0.0.1."""
    return httpserver_ipv4


@pytest.fixture
def session(engine: sa.Engine) -> Iterator[orm.Session]:
    """A session in a transaction, committed at the end of the test."""
    with orm.Session(engine) as session, session.begin():
        yield session


@pytest.fixture
def store() -> PgVectorStore:
    return PgVectorStore()


def unit(vector: list[float]) -> list[float]:
    norm = sum(x * x for x in vector) ** 0.5
    return [x / norm for x in vector]


def random_vector(rng: random.Random, dimension: int = DIMENSION) -> list[float]:
    return unit([rng.gauss(0, 1) for _ in range(dimension)])


def item(node_id: str, vector: list[float], **overrides: Any) -> VectorItem:
    values: dict[str, Any] = {"node_id": node_id, "content": f"content of {node_id}"}
    return VectorItem(**{**values, "embedding": vector, **overrides})


def hnsw_indexes(session: orm.Session) -> set[str]:
    rows = session.execute(
        sa.text(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'embedding_vectors'"
            " AND indexname LIKE 'ix_embedding_vectors_hnsw_%'"
        )
    )
    return set(rows.scalars())


# -- vector store ------------------------------------------------------------------------------


def test_collection_name_is_difys() -> None:
    dataset_id = "5f3e1c2a-9b1d-4c1e-8f00-1234567890ab"

    assert collection_name(dataset_id) == "Vector_index_5f3e1c2a_9b1d_4c1e_8f00_1234567890ab_Node"
    assert PgVectorStore.collection_name(dataset_id) == collection_name(dataset_id)


def test_upserting_a_node_twice_keeps_one_row_with_the_latest_values(
    session: orm.Session, store: PgVectorStore
) -> None:
    rng = random.Random(1)
    document_id = str(uuid.uuid4())
    store.upsert(session, COLLECTION, [item("n1", random_vector(rng), document_id=document_id)])

    second = random_vector(rng)
    written = store.upsert(
        session,
        COLLECTION,
        [item("n1", second, content="new content", metadata={"doc_hash": "h2"})],
    )

    row = session.execute(sa.select(EmbeddingVector)).scalar_one()
    assert written == 1
    assert store.count(session, COLLECTION) == 1
    assert (row.content, row.metadata_, row.document_id) == (
        "new content",
        {"doc_hash": "h2"},
        None,
    )
    assert row.dimension == DIMENSION
    assert row.embedding == pytest.approx(second, abs=1e-6)


def test_a_node_given_twice_in_one_upsert_keeps_the_last(
    session: orm.Session, store: PgVectorStore
) -> None:
    rng = random.Random(2)

    written = store.upsert(
        session,
        COLLECTION,
        [item("n1", random_vector(rng)), item("n1", random_vector(rng), content="last")],
    )

    assert written == 1
    assert session.execute(sa.select(EmbeddingVector.content)).scalar_one() == "last"


def test_upsert_rejects_mixed_dimensions_and_bad_values(
    session: orm.Session, store: PgVectorStore
) -> None:
    with pytest.raises(PermanentError, match="share a dimension"):
        store.upsert(session, COLLECTION, [item("a", [1.0, 0.0]), item("b", [1.0, 0.0, 0.0])])
    with pytest.raises(PermanentError, match="NaN"):
        store.upsert(session, COLLECTION, [item("a", [1.0, float("nan")])])
    with pytest.raises(PermanentError, match="not a UUID"):
        store.upsert(session, COLLECTION, [item("a", [1.0, 0.0], document_id="doc-1")])
    assert store.upsert(session, COLLECTION, []) == 0


def test_delete_variants_remove_only_their_nodes(
    session: orm.Session, store: PgVectorStore
) -> None:
    rng = random.Random(3)
    doc_a, doc_b = str(uuid.uuid4()), str(uuid.uuid4())
    store.upsert(
        session,
        COLLECTION,
        [
            item("a1", random_vector(rng), document_id=doc_a),
            item("a2", random_vector(rng), document_id=doc_a),
            item("b1", random_vector(rng), document_id=doc_b),
            item("b2", random_vector(rng), document_id=doc_b),
            item("x1", random_vector(rng), metadata={"annotation_id": "ann-1"}),
            item("x2", random_vector(rng), metadata={"annotation_id": "ann-2"}),
        ],
    )
    store.upsert(session, "other", [item("a1", random_vector(rng), document_id=doc_a)])

    assert store.count(session, COLLECTION) == 6
    assert store.count(session, COLLECTION, document_id=doc_a) == 2

    assert store.delete_nodes(session, COLLECTION, ["a1", "missing"]) == 1
    assert store.delete_nodes(session, COLLECTION, []) == 0
    assert store.delete_document(session, COLLECTION, doc_b) == 2
    assert store.delete_where(session, COLLECTION, "annotation_id", "ann-1") == 1
    remaining = session.execute(
        sa.select(EmbeddingVector.node_id).where(EmbeddingVector.collection == COLLECTION)
    )
    assert sorted(remaining.scalars()) == ["a2", "x2"]

    assert store.delete_collection(session, COLLECTION) == 2
    assert store.count(session, COLLECTION) == 0
    assert store.count(session, "other") == 1


def test_search_finds_the_nearest_of_200_nodes_first(
    session: orm.Session, store: PgVectorStore
) -> None:
    rng = random.Random(4)
    vectors = {f"node-{i}": random_vector(rng) for i in range(200)}
    documents = {node_id: str(uuid.uuid4()) for node_id in vectors}
    store.upsert(
        session,
        COLLECTION,
        [
            item(node_id, vector, document_id=documents[node_id], metadata={"i": node_id})
            for node_id, vector in vectors.items()
        ],
    )
    target = vectors["node-137"]
    query = unit([x + rng.gauss(0, 0.02) for x in target])

    hits = store.search(session, COLLECTION, query, top_k=5)

    assert hits[0].node_id == "node-137"
    assert len(hits) == 5
    assert hits[0].score > 0.95
    assert hits[0].score >= hits[1].score >= hits[4].score
    assert hits[0].document_id == documents["node-137"]
    assert hits[0].metadata == {"i": "node-137"}
    assert hits[0].content == "content of node-137"


def test_search_filters_by_document_threshold_collection_and_dimension(
    session: orm.Session, store: PgVectorStore
) -> None:
    rng = random.Random(5)
    doc_a, doc_b = str(uuid.uuid4()), str(uuid.uuid4())
    near = random_vector(rng)
    store.upsert(
        session,
        COLLECTION,
        [
            item("near", near, document_id=doc_a),
            item("far", [-x for x in near], document_id=doc_b),
        ],
    )
    store.upsert(session, "other", [item("elsewhere", near)])
    store.upsert(session, COLLECTION, [item("small", [1.0, 0.0, 0.0])])

    by_document = store.search(
        session, COLLECTION, near, top_k=10, score_threshold=-1.0, document_ids=[doc_b]
    )
    above = store.search(session, COLLECTION, near, top_k=10, score_threshold=0.5)
    everything = store.search(session, COLLECTION, near, top_k=10, score_threshold=-1.0)

    assert [hit.node_id for hit in by_document] == ["far"]
    assert by_document[0].score == pytest.approx(-1.0, abs=1e-5)
    assert [hit.node_id for hit in above] == ["near"]
    assert [hit.node_id for hit in everything] == ["near", "far"]
    assert store.search(session, COLLECTION, near, document_ids=[]) == []
    assert [h.node_id for h in store.search(session, COLLECTION, [1.0, 0.1, 0.0])] == ["small"]


def test_first_write_of_a_dimension_creates_its_hnsw_index(
    session: orm.Session, store: PgVectorStore
) -> None:
    assert hnsw_indexes(session) == set()

    store.upsert(session, COLLECTION, [item("a", random_vector(random.Random(6)))])
    store.upsert(session, COLLECTION, [item("b", [0.5, 0.5, 0.1])])
    store.upsert(session, COLLECTION, [item("c", [0.1, 0.2, 0.3])])
    store.upsert(session, COLLECTION, [item("wide", [1.0] * 2001)])

    assert hnsw_indexes(session) == {"ix_embedding_vectors_hnsw_64", "ix_embedding_vectors_hnsw_3"}
    assert [hit.node_id for hit in store.search(session, COLLECTION, [1.0] * 2001)] == ["wide"]


def test_search_query_uses_the_hnsw_index(session: orm.Session, store: PgVectorStore) -> None:
    rng = random.Random(7)
    store.upsert(session, COLLECTION, [item(f"n{i}", random_vector(rng)) for i in range(200)])
    session.execute(sa.text("ANALYZE embedding_vectors"))
    captured: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        if "<=>" in statement:
            captured.append((statement, parameters))

    connection = session.connection()
    sa.event.listen(connection, "before_cursor_execute", capture)
    try:
        store.search(session, COLLECTION, random_vector(rng), top_k=3)
    finally:
        sa.event.remove(connection, "before_cursor_execute", capture)
    ((statement, parameters),) = captured

    # With 200 rows, reading the collection through its btree and sorting costs less than the
    # HNSW scan; without those alternatives the planner must show the index serves the query.
    session.execute(sa.text("SET LOCAL enable_seqscan = off"))
    session.execute(sa.text("SET LOCAL enable_sort = off"))
    driver = connection.connection.driver_connection
    assert driver is not None
    plan = "\n".join(row[0] for row in driver.execute("EXPLAIN " + statement, parameters))

    assert "ix_embedding_vectors_hnsw_64" in plan, plan


# -- embedding cache ---------------------------------------------------------------------------


def test_cached_embedder_asks_only_for_texts_it_has_not_seen(
    engine: sa.Engine, httpserver: HTTPServer
) -> None:
    requests: list[list[str]] = []

    def handler(request: Request) -> Response:
        texts = json.loads(request.get_data())["input"]
        requests.append(texts)
        data = [
            {"index": i, "embedding": [float(len(text)), 0.1, -2.0]} for i, text in enumerate(texts)
        ]
        body = {"data": data, "usage": {"total_tokens": 7 * len(texts)}}
        return Response(json.dumps(body), content_type="application/json")

    httpserver.expect_request("/v1/embeddings", method="POST").respond_with_handler(handler)
    inner = OpenAIEmbedder(httpserver.url_for("/v1"), "k", "small", timeout=5)
    factory = orm.sessionmaker(engine)
    cached = CachedEmbedder(inner, factory.begin)
    other_worker = OpenAIEmbedder(httpserver.url_for("/v1"), "k", "small", timeout=5)
    fresh = CachedEmbedder(other_worker, factory.begin)

    first = cached.embed(["alpha", "beta", "alpha"])
    second = cached.embed(["beta", "alpha", "gamma"])
    third = cached.embed(["gamma", "beta", "alpha"])
    from_cache_only = fresh.embed(["alpha"])
    inner.close()
    other_worker.close()

    assert requests == [["alpha", "beta"], ["gamma"]]
    # a request's 14 tokens split over its two texts; cached texts count their share again
    assert first.text_tokens == [7, 7, 7] and second.text_tokens == [7, 7, 7]
    assert (first.tokens, second.tokens, third.tokens, from_cache_only.tokens) == (21, 21, 21, 7)
    assert first.vectors[0] == first.vectors[2] == second.vectors[1] == third.vectors[2]
    assert first.vectors[0] == pytest.approx([5.0, 0.1, -2.0], rel=1e-6)
    assert (cached.provider, cached.model, cached.dimension) == ("openai", "small", 3)
    assert from_cache_only.vectors == [first.vectors[0]] and fresh.dimension == 3
    with factory() as session:
        rows = session.execute(
            sa.select(Embedding.model_name, Embedding.provider_name, Embedding.hash)
        )
        assert sorted(rows.all()) == sorted(
            ("small", "openai", text_hash(text)) for text in ("alpha", "beta", "gamma")
        )


def test_cache_holds_no_transaction_while_embedding_and_tolerates_a_concurrent_writer(
    engine: sa.Engine,
) -> None:
    factory = orm.sessionmaker(engine)
    local = LocalEmbedder(8)
    open_sessions = 0

    @contextlib.contextmanager
    def counted_scope() -> Iterator[orm.Session]:
        nonlocal open_sessions
        with factory.begin() as session:
            open_sessions += 1
            try:
                yield session
            finally:
                open_sessions -= 1

    class RacingEmbedder:
        """While it "calls the API", another worker caches the same texts."""

        provider, model, dimension = local.provider, local.model, local.dimension

        def embed(self, texts: Sequence[str]) -> EmbeddingBatch:
            assert open_sessions == 0
            CachedEmbedder(local, factory.begin).embed(texts)
            return local.embed(texts)

    batch = CachedEmbedder(RacingEmbedder(), counted_scope).embed(["hello world"])
    wider = CachedEmbedder(LocalEmbedder(16), factory.begin).embed(["hello world"])

    assert batch.vectors[0] == pytest.approx(local.embed(["hello world"]).vectors[0], abs=1e-7)
    assert len(wider.vectors[0]) == 16
    assert batch.tokens == wider.tokens == 2
    with factory() as session:
        count = session.execute(sa.select(sa.func.count()).select_from(Embedding)).scalar_one()
        assert count == 2


def test_a_text_cached_before_tokens_were_recorded_learns_them_and_keeps_its_vector(
    engine: sa.Engine,
) -> None:
    factory = orm.sessionmaker(engine)
    local = LocalEmbedder(8)
    legacy = [9.0] * 8  # not what the embedder would return: it must stay the text's vector
    with factory.begin() as session:
        session.add(
            Embedding(
                model_name=local.model,
                provider_name=local.provider,
                hash=text_hash("one two three"),
                embedding=struct.pack("<8f", *legacy),
            )
        )

    first = CachedEmbedder(local, factory.begin).embed(["one two three", "four"])
    again = CachedEmbedder(local, factory.begin).embed(["four", "one two three"])

    assert first.vectors[0] == legacy and again.vectors[1] == legacy
    assert first.text_tokens == [3, 1] and again.text_tokens == [1, 3]
    with factory() as session:
        tokens = dict(session.execute(sa.select(Embedding.hash, Embedding.tokens)).all())
    assert tokens == {text_hash("one two three"): 3, text_hash("four"): 1}


def test_apportioned_tokens_add_up_to_the_requests_total() -> None:
    texts = ["a short one", "a much longer text of several words, with punctuation!", "x"]

    parts = apportion(100, texts)

    assert sum(parts) == 100
    assert parts[1] > parts[0] > parts[2] >= 0
    assert apportion(0, texts) == [0, 0, 0] and apportion(5, []) == []


# -- keyword index -----------------------------------------------------------------------------


@pytest.fixture
def dataset_id(session: orm.Session) -> str:
    tenant = factories.make_tenant(session)
    return str(factories.make_dataset(session, tenant).id)


def test_keyword_extraction_is_lowercased_unique_and_offline() -> None:
    words = KeywordIndex().extract_keywords(
        f"PostgreSQL stores vectors. PostgreSQL indexes vectors{COMMA}自然语言处理和机器学习", 5
    )

    assert len(words) == 5
    assert len(set(words)) == 5
    assert "postgresql" in words
    assert all(word == word.lower() for word in words)
    assert KeywordIndex().extract_keywords("", 5) == []


def test_keyword_search_finds_english_and_chinese_nodes(
    session: orm.Session, dataset_id: str
) -> None:
    index = KeywordIndex()
    document_id = str(uuid.uuid4())
    written = index.upsert(
        session,
        dataset_id,
        [
            ("en-1", document_id, "The lighthouse keeper trimmed the wick every evening.", None),
            ("en-2", document_id, "Interest rates rose in the third quarter.", None),
            ("zh-1", None, f"长城是中国古代的军事防御工程{COMMA}明朝对长城进行了修缮。", None),
            ("zh-2", None, "熊猫主要生活在四川的竹林里。", ["熊猫", "Bamboo"]),
        ],
    )

    english = index.search(session, dataset_id, "Who trimmed the lighthouse wick?")
    chinese = index.search(session, dataset_id, "长城是什么时候修建的")
    by_keyword = index.search(session, dataset_id, "bamboo")

    assert written == 4
    assert [hit.node_id for hit in english] == ["en-1"]
    assert english[0].document_id == document_id
    assert 0 < english[0].score < 1
    assert [hit.node_id for hit in chinese] == ["zh-1"]
    assert [hit.node_id for hit in by_keyword] == ["zh-2"]
    assert index.search(session, dataset_id, "?!") == []
    keywords = session.execute(sa.text("SELECT keywords FROM keyword_index WHERE node_id = 'zh-2'"))
    assert keywords.scalar_one() == ["熊猫", "bamboo"]


def test_keyword_search_returns_the_segment_content(session: orm.Session) -> None:
    tenant = factories.make_tenant(session)
    dataset = factories.make_dataset(session, tenant)
    document = factories.make_document(session, dataset)
    session.add(
        DocumentSegment(
            tenant_id=tenant.id,
            dataset_id=dataset.id,
            document_id=document.id,
            position=1,
            content="Glaciers carve valleys.",
            word_count=3,
            tokens=3,
            created_by=factories.USER,
            index_node_id="node-1",
            index_node_hash="hash-1",
        )
    )
    session.flush()
    index = KeywordIndex()
    index.upsert(
        session, str(dataset.id), [("node-1", str(document.id), "Glaciers carve valleys.", None)]
    )

    (hit,) = index.search(session, str(dataset.id), "glaciers")

    assert hit.content == "Glaciers carve valleys."
    assert hit.metadata == {
        "doc_id": "node-1",
        "doc_hash": "hash-1",
        "document_id": str(document.id),
        "dataset_id": str(dataset.id),
    }


def test_keyword_upsert_replaces_and_deletes_by_node_document_and_dataset(
    session: orm.Session, dataset_id: str
) -> None:
    index = KeywordIndex()
    doc_a, doc_b = str(uuid.uuid4()), str(uuid.uuid4())
    index.upsert(
        session,
        dataset_id,
        [
            ("a1", doc_a, "apples and pears", None),
            ("a2", doc_a, "apples and plums", None),
            ("b1", doc_b, "bananas", None),
            ("b2", doc_b, "apples", None),
            ("c1", None, "?!", None),
        ],
    )
    index.upsert(session, dataset_id, [("a1", doc_a, "cherries", None)])

    assert [h.node_id for h in index.search(session, dataset_id, "cherries")] == ["a1"]
    assert {h.node_id for h in index.search(session, dataset_id, "apples", top_k=10)} == {
        "a2",
        "b2",
    }

    assert index.delete_nodes(session, dataset_id, ["a2"]) == 1
    assert index.delete_document(session, dataset_id, doc_b) == 2
    assert [h.node_id for h in index.search(session, dataset_id, "apples cherries")] == ["a1"]
    assert index.delete_dataset(session, dataset_id) == 2
    assert index.search(session, dataset_id, "cherries") == []


def test_hnsw_search_of_a_small_collection_in_a_big_table_still_fills_top_k(
    session: orm.Session, store: PgVectorStore
) -> None:
    rng = random.Random(8)
    store.upsert(session, "big", [item(f"b{i}", random_vector(rng)) for i in range(2000)])
    store.upsert(session, COLLECTION, [item(f"s{i}", random_vector(rng)) for i in range(10)])
    session.execute(sa.text("ANALYZE embedding_vectors"))
    # Force the HNSW scan: it returns the nearest rows of every collection, and the filter keeps
    # few of them; pgvector's iterative scan (set by search) goes on until top_k are found.
    session.execute(sa.text("SET LOCAL enable_seqscan = off"))
    session.execute(sa.text("SET LOCAL enable_sort = off"))

    hits = store.search(session, COLLECTION, random_vector(rng), top_k=5, score_threshold=-1.0)

    assert len(hits) == 5
    assert all(hit.node_id.startswith("s") for hit in hits)
    assert [hit.score for hit in hits] == sorted((hit.score for hit in hits), reverse=True)


def test_search_returns_exactly_top_k_when_the_index_scan_comes_back_short(
    session: orm.Session, store: PgVectorStore
) -> None:
    rng = random.Random(9)
    document = str(uuid.uuid4())
    for _ in range(3):  # re-indexing leaves dead tuples in the HNSW graph
        nodes = [
            item(f"n{i}", random_vector(rng), document_id=document if i < 5 else None)
            for i in range(134)
        ]
        store.upsert(session, COLLECTION, nodes)
    store.upsert(session, "big", [item(f"b{i}", random_vector(rng)) for i in range(500)])
    session.execute(sa.text("ANALYZE embedding_vectors"))
    session.execute(sa.text("SET LOCAL enable_seqscan = off"))
    session.execute(sa.text("SET LOCAL enable_sort = off"))
    query = random_vector(rng)

    full = store.search(session, COLLECTION, query, top_k=134, score_threshold=-1.0)
    # the index scan now gives up at once: the search must still find them, by an exact scan
    session.execute(sa.text("SET LOCAL hnsw.max_scan_tuples = 1"))
    starved = store.search(
        session, COLLECTION, query, top_k=5, score_threshold=-1.0, document_ids=[document]
    )

    assert len(full) == 134 and {hit.node_id for hit in full} == {f"n{i}" for i in range(134)}
    assert [hit.score for hit in full] == sorted((hit.score for hit in full), reverse=True)
    similarity = {
        n.node_id: sum(a * b for a, b in zip(n.embedding, query, strict=True)) for n in nodes[:5]
    }
    assert [hit.node_id for hit in starved] == sorted(similarity, key=lambda n: -similarity[n])
