"""Embedders without a database: the local hashing model and the OpenAI-compatible client."""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from worker.domain.embedding import LocalEmbedder, OpenAIEmbedder
from worker.domain.errors import PermanentError, TransientError

#: Chinese text is written with full-width commas (spelt out: ruff flags the character).
COMMA = "\uff0c"
LONG_DOCUMENT = (
    "The lighthouse keeper climbed the spiral staircase every evening at dusk. "
    "He trimmed the wick, polished the great lens and wound the clockwork that turned it. "
    "Ships passing the reef relied on the beam to find the narrow channel into the harbour. "
    "During the winter storms of 1887 the keeper stayed awake for nine nights in a row. "
    "Salt spray froze on the lantern glass and had to be scraped away with a brass knife. "
    "His logbook records the wind speed, the visibility and every vessel that was sighted. "
    "Historians later used those notes to reconstruct the wreck of the schooner Margaret. "
    "Today the tower is automated and the keeper's cottage has become a small museum."
)
OTHER_TEXTS = [
    "Photosynthesis converts light energy into chemical energy stored in glucose molecules.",
    "The stock exchange closed lower after the central bank raised interest rates again.",
    "Preheat the oven, whisk the eggs with sugar and fold in the sifted flour gently.",
    "The goalkeeper saved a penalty in the final minute and the crowd roared with delight.",
    "Compilers translate source code into machine instructions through several passes.",
    "Volcanic eruptions release ash and sulphur dioxide high into the stratosphere.",
    "The orchestra rehearsed the symphony's slow movement until the strings were in tune.",
    "Migratory birds navigate using the earth's magnetic field and the position of stars.",
    "A mortgage is a loan secured by real estate, repaid with interest over many years.",
    "The museum's new wing displays sculptures from the classical period of ancient Greece.",
    "Regular exercise improves cardiovascular health and lowers the risk of diabetes.",
    "The novel follows two sisters who inherit a vineyard in the south of France.",
    "Glaciers carve U-shaped valleys as they slowly advance and retreat over millennia.",
    "The committee postponed the vote on the budget until the next session of parliament.",
    "Quantum computers use qubits that can represent zero and one at the same time.",
    "The harbour master checked the cargo manifests before the ferry left the dock.",
    "Winter tyres provide better grip on snow and ice than ordinary summer tyres.",
    "The museum was closed in winter while the storm damaged the roof of the old wing.",
    "She wrote the letter by candlelight and sealed the envelope with red wax.",
    "Bees communicate the direction of flowers to the hive through a waggle dance.",
]


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


@pytest.fixture
def httpserver(httpserver_ipv4: HTTPServer) -> HTTPServer:
    """pytest-httpserver's server, listening on 127.0.0.1."""
    return httpserver_ipv4


# -- LocalEmbedder -----------------------------------------------------------------------------


def test_local_embedder_names_its_model_after_the_dimension() -> None:
    embedder = LocalEmbedder(64)

    assert (embedder.provider, embedder.model, embedder.dimension) == ("local", "hashing-64", 64)
    assert LocalEmbedder().dimension == 256


def test_local_vectors_are_deterministic_and_unit_length() -> None:
    texts = ["Hello, world! Hello again.", "Une phrase en français.", "机器学习很有趣"]

    first = LocalEmbedder().embed(texts)
    second = LocalEmbedder().embed(texts)

    assert first == second
    assert all(len(vector) == 256 for vector in first.vectors)
    assert all(math.isclose(cosine(v, v), 1.0) for v in first.vectors)


def test_local_vectors_are_the_same_in_another_process() -> None:
    text = "Stable hashing survives PYTHONHASHSEED changes."
    script = (
        "import json; from worker.domain.embedding import LocalEmbedder; "
        f"print(json.dumps(LocalEmbedder(32).embed([{text!r}]).vectors[0]))"
    )
    output = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "12345"},
    ).stdout

    assert json.loads(output) == LocalEmbedder(32).embed([text]).vectors[0]


def test_local_embedding_of_text_without_words_is_the_zero_vector() -> None:
    batch = LocalEmbedder(8).embed(["", " ,.!? "])

    assert batch.vectors == [[0.0] * 8, [0.0] * 8]
    assert batch.tokens == 0


def test_local_tokens_count_the_words() -> None:
    assert LocalEmbedder().embed(["one two three", "four"]).tokens == 4


def test_case_and_punctuation_do_not_matter() -> None:
    a, b = LocalEmbedder().embed(["The Quick Brown Fox!", "the quick brown fox"]).vectors

    assert cosine(a, b) == pytest.approx(1.0)


def test_similar_sentences_score_higher_than_unrelated_ones() -> None:
    query, similar, unrelated = (
        LocalEmbedder()
        .embed(
            [
                "The cat sat on the warm mat by the fire.",
                "A cat was sitting on the mat near the fire.",
                "Interest rates rose sharply in the third quarter.",
            ]
        )
        .vectors
    )

    assert cosine(query, similar) > 0.4
    assert cosine(query, similar) > cosine(query, unrelated) + 0.3


def test_chinese_similar_sentences_score_higher_than_unrelated_ones() -> None:
    batch = LocalEmbedder().embed(
        [
            f"机器学习是人工智能的一个分支{COMMA}它使计算机能够从数据中学习。",
            f"机器学习让计算机从数据中学习{COMMA}是人工智能的分支。",
            f"今天天气很好{COMMA}我们去公园散步吧。",
        ]
    )
    query, similar, unrelated = batch.vectors

    assert cosine(query, similar) > 0.5
    assert cosine(query, similar) > cosine(query, unrelated) + 0.3
    assert batch.tokens > 0


def test_a_sentence_of_a_long_document_finds_that_document_first() -> None:
    embedder = LocalEmbedder()
    chunks = [*OTHER_TEXTS, LONG_DOCUMENT]
    vectors = embedder.embed(chunks).vectors

    for sentence in LONG_DOCUMENT.split(". "):
        (query,) = embedder.embed([sentence]).vectors
        scores = [cosine(query, vector) for vector in vectors]

        assert max(range(len(chunks)), key=scores.__getitem__) == len(chunks) - 1, sentence


def test_a_chinese_sentence_finds_its_chinese_document() -> None:
    embedder = LocalEmbedder()
    document = (
        f"长城是中国古代的军事防御工程。它东起山海关{COMMA}西至嘉峪关{COMMA}全长两万多公里。"
        "修建长城的历史可以追溯到春秋战国时期。明朝对长城进行了大规模的修缮。"
    )
    others = [
        f"北京是中国的首都{COMMA}也是政治和文化中心。",
        f"熊猫主要生活在四川的竹林里{COMMA}以竹子为食。",
        f"春节是中国最重要的传统节日{COMMA}家人团聚吃年夜饭。",
        "深度学习需要大量的数据和计算资源来训练模型。",
    ]
    vectors = embedder.embed([*others, document]).vectors

    (query,) = embedder.embed(["明朝对长城进行了大规模的修缮"]).vectors
    scores = [cosine(query, vector) for vector in vectors]

    assert max(range(len(scores)), key=scores.__getitem__) == len(others)


# -- OpenAIEmbedder ----------------------------------------------------------------------------


def vector_for(text: str) -> list[float]:
    return [float(len(text)), 1.0, -1.0]


def openai_reply(request: Request) -> Response:
    """An OpenAI-style reply, items deliberately in reverse order."""
    body = json.loads(request.get_data())
    data = [
        {"object": "embedding", "index": i, "embedding": vector_for(text)}
        for i, text in enumerate(body["input"])
    ]
    reply = {
        "object": "list",
        "model": body["model"],
        "data": list(reversed(data)),
        "usage": {"prompt_tokens": len(data), "total_tokens": 10 * len(data)},
    }
    return Response(json.dumps(reply), content_type="application/json")


@pytest.fixture
def embedder(httpserver: HTTPServer) -> Iterator[OpenAIEmbedder]:
    embedder = OpenAIEmbedder(
        httpserver.url_for("/v1/"), "sk-test", "text-embedding-3-small", batch_size=2, timeout=5
    )
    yield embedder
    embedder.close()


def test_openai_embeds_in_batches_and_orders_by_index(
    httpserver: HTTPServer, embedder: OpenAIEmbedder
) -> None:
    inputs: list[list[str]] = []

    def handler(request: Request) -> Response:
        assert request.headers["Authorization"] == "Bearer sk-test"
        body = json.loads(request.get_data())
        assert body["model"] == "text-embedding-3-small"
        inputs.append(body["input"])
        return openai_reply(request)

    httpserver.expect_request("/v1/embeddings", method="POST").respond_with_handler(handler)
    texts = ["a", "bb", "ccc", "dddd", "eeeee"]

    batch = embedder.embed(texts)

    assert inputs == [["a", "bb"], ["ccc", "dddd"], ["eeeee"]]
    assert batch.vectors == [vector_for(text) for text in texts]
    assert batch.tokens == 50
    assert embedder.dimension == 3
    assert embedder.provider == "openai"


def test_openai_dimension_is_unknown_before_the_first_call(embedder: OpenAIEmbedder) -> None:
    with pytest.raises(RuntimeError, match="after the first embed"):
        _ = embedder.dimension


def test_openai_sends_no_authorization_without_a_key(httpserver: HTTPServer) -> None:
    def handler(request: Request) -> Response:
        assert "Authorization" not in request.headers
        return openai_reply(request)

    httpserver.expect_request("/embeddings").respond_with_handler(handler)
    embedder = OpenAIEmbedder(httpserver.url_for(""), None, "local-model", dimension=3)

    assert embedder.embed(["x"]).vectors == [vector_for("x")]
    assert embedder.embed([]).vectors == []
    embedder.close()


@pytest.mark.parametrize("status", [429, 500, 503])
def test_openai_rate_limits_and_server_errors_are_transient(
    httpserver: HTTPServer, embedder: OpenAIEmbedder, status: int
) -> None:
    httpserver.expect_request("/v1/embeddings").respond_with_json(
        {"error": {"message": "slow down"}}, status=status
    )

    with pytest.raises(TransientError, match=f"{status}: slow down"):
        embedder.embed(["a"])


def test_openai_client_errors_are_permanent_with_the_reply_message(
    httpserver: HTTPServer, embedder: OpenAIEmbedder
) -> None:
    httpserver.expect_request("/v1/embeddings").respond_with_json(
        {"error": {"message": "'input' is too long", "type": "invalid_request_error"}}, status=400
    )

    with pytest.raises(PermanentError, match="400: 'input' is too long"):
        embedder.embed(["a"])


def test_openai_timeout_is_transient(httpserver: HTTPServer) -> None:
    def slow(request: Request) -> Response:
        time.sleep(0.5)
        return openai_reply(request)

    httpserver.expect_request("/embeddings").respond_with_handler(slow)
    embedder = OpenAIEmbedder(httpserver.url_for(""), "k", "m", timeout=0.1)

    with pytest.raises(TransientError, match="timed out"):
        embedder.embed(["a"])
    embedder.close()


def test_openai_refused_connection_is_transient() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    embedder = OpenAIEmbedder(f"http://127.0.0.1:{port}/v1", "k", "m", timeout=2)

    with pytest.raises(TransientError, match="cannot reach embedding endpoint"):
        embedder.embed(["a"])
    embedder.close()


@pytest.mark.parametrize(
    "reply",
    [
        {"data": []},
        {"nothing": True},
        {"data": [{"index": 0}]},
        {"data": [{"index": 0, "embedding": ["x"]}]},
        {"data": [{"index": 5, "embedding": [1.0]}]},
        {"data": [{"index": 0, "embedding": [1.0]}], "usage": {"total_tokens": "many"}},
        [1, 2, 3],
    ],
)
def test_openai_malformed_replies_are_permanent(
    httpserver: HTTPServer, embedder: OpenAIEmbedder, reply: Any
) -> None:
    httpserver.expect_request("/v1/embeddings").respond_with_json(reply)

    with pytest.raises(PermanentError):
        embedder.embed(["a"])


def test_openai_non_json_reply_is_permanent(
    httpserver: HTTPServer, embedder: OpenAIEmbedder
) -> None:
    httpserver.expect_request("/v1/embeddings").respond_with_data("<html>oops</html>")

    with pytest.raises(PermanentError, match="not JSON"):
        embedder.embed(["a"])


def test_openai_rejects_vectors_of_another_dimension(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/embeddings").respond_with_handler(openai_reply)
    embedder = OpenAIEmbedder(httpserver.url_for(""), "k", "m", dimension=1536)

    with pytest.raises(PermanentError, match="expected 1536"):
        embedder.embed(["a"])
    embedder.close()


def test_openai_rejects_a_dimension_change_between_calls(httpserver: HTTPServer) -> None:
    httpserver.expect_oneshot_request("/embeddings").respond_with_handler(openai_reply)
    httpserver.expect_oneshot_request("/embeddings").respond_with_json(
        {"data": [{"index": 0, "embedding": [1.0, 2.0]}]}
    )
    client = httpx.Client()
    embedder = OpenAIEmbedder(httpserver.url_for(""), "k", "m", client=client)
    embedder.embed(["a"])

    with pytest.raises(PermanentError, match="expected 3"):
        embedder.embed(["b"])

    embedder.close()
    assert not client.is_closed
    client.close()
