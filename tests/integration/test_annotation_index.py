"""One annotation in or out of its app's reply index, in-process on a real database."""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tests import annotations, factories
from tests.uow import run
from worker import db, runtime
from worker.config import Settings
from worker.domain.annotation import index, store
from worker.domain.embedding import LocalEmbedder, OpenAIEmbedder
from worker.domain.errors import TransientError
from worker.domain.models import AppAnnotationSetting, MessageAnnotation
from worker.domain.pipeline import Pipeline
from worker.domain.ports import EmbeddingBatch


@pytest.fixture(autouse=True)
def task_layer(database_url: str, tmp_path: Path) -> Iterator[runtime.Runtime]:
    yield runtime.setup(database_url, settings=Settings(storage_local_path=tmp_path / "storage"))
    runtime.teardown()


@pytest.fixture
def pipeline() -> Pipeline:
    return runtime.current().pipeline


@dataclass
class Enabled:
    """An app with replies enabled on ``binding``, one annotation, and another app sharing the
    collection with a vector of its own."""

    app_id: str
    annotation_id: str
    binding: store.Binding
    other_node: str


@pytest.fixture(name="e")
def enabled(pipeline: Pipeline) -> Enabled:
    binding = annotations.binding("model-a")
    with db.session_scope() as session:
        tenant = factories.make_tenant(session)
        app = annotations.make_app(session, tenant)
        other = annotations.make_app(session, tenant, name="Other bot")
        annotations.make_setting(session, app, binding)
        annotations.make_setting(session, other, binding)
        annotation = annotations.make_annotation(session, app, "How do I reset my password?")
        other_annotation = annotations.make_annotation(session, other, "Opening hours?")
        other_items = store.embed(pipeline, other.id, {other_annotation.id: "Opening hours?"})
        pipeline.vectors.upsert(session, binding.collection, other_items)
        return Enabled(str(app.id), str(annotation.id), binding, str(other_annotation.id))


def add(p: Pipeline, e: Enabled, binding_id: uuid.UUID | None = None) -> str:
    return run(
        index.index_annotation, p, annotation_id=e.annotation_id, app_id=e.app_id,
        collection_binding_id=str(binding_id or e.binding.id),
    )  # fmt: skip


def set_question(annotation_id: str, question: str) -> None:
    with db.session_scope() as session:
        session.execute(
            sa.update(MessageAnnotation)
            .where(MessageAnnotation.id == annotation_id)
            .values(question=question)
        )


def test_add_indexes_the_question_with_difys_metadata(pipeline: Pipeline, e: Enabled) -> None:
    assert add(pipeline, e) == "indexed"

    app_vectors = annotations.vectors(e.binding.collection, e.app_id)
    assert app_vectors == {e.annotation_id: "How do I reset my password?"}
    assert e.other_node in annotations.vectors(e.binding.collection)


def test_add_after_the_annotation_was_deleted_writes_no_vector(
    pipeline: Pipeline, e: Enabled
) -> None:
    with db.session_scope() as session:
        session.execute(sa.delete(MessageAnnotation).where(MessageAnnotation.id == e.annotation_id))

    assert add(pipeline, e) == "annotation not found"
    assert annotations.vectors(e.binding.collection, e.app_id) == {}


def test_add_after_the_question_changed_indexes_the_new_question(
    pipeline: Pipeline, e: Enabled
) -> None:
    set_question(e.annotation_id, "How do I change my password?")

    add(pipeline, e)

    assert annotations.vectors(e.binding.collection, e.app_id) == {
        e.annotation_id: "How do I change my password?"
    }


def test_update_replaces_the_vector_in_one_upsert(pipeline: Pipeline, e: Enabled) -> None:
    add(pipeline, e)
    set_question(e.annotation_id, "Forgot my password")

    add(pipeline, e)  # update_annotation_to_index_task calls the same service

    assert annotations.vectors(e.binding.collection, e.app_id) == {
        e.annotation_id: "Forgot my password"
    }


class EditingEmbedder:
    """Embeds locally; on its first call, the annotation is edited (a later update's edit)."""

    def __init__(self, annotation_id: str) -> None:
        self.inner = LocalEmbedder(32)
        self.provider, self.model = self.inner.provider, self.inner.model
        self.annotation_id, self.calls = annotation_id, 0

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    def embed(self, texts: Sequence[str]) -> EmbeddingBatch:
        self.calls += 1
        if self.calls == 1:
            set_question(self.annotation_id, "Edited while embedding")
        return self.inner.embed(texts)


def test_a_question_edited_while_embedding_is_embedded_again(
    pipeline: Pipeline, e: Enabled
) -> None:
    editing = EditingEmbedder(e.annotation_id)

    assert add(dataclasses.replace(pipeline, embedder=editing), e) == "indexed"

    assert editing.calls == 2
    assert annotations.vectors(e.binding.collection, e.app_id) == {
        e.annotation_id: "Edited while embedding"
    }


def test_add_goes_where_the_replies_point_now(pipeline: Pipeline, e: Enabled) -> None:
    moved = annotations.binding("model-b")
    with db.session_scope() as session:
        session.execute(
            sa.update(AppAnnotationSetting)
            .where(AppAnnotationSetting.app_id == e.app_id)
            .values(collection_binding_id=moved.id)
        )

    add(pipeline, e)  # deferred while the app still pointed to model-a

    assert annotations.annotation_vectors(e.app_id) == {moved.collection: {e.annotation_id}}


def test_add_with_replies_disabled_writes_nothing(pipeline: Pipeline, e: Enabled) -> None:
    with db.session_scope() as session:
        session.execute(
            sa.delete(AppAnnotationSetting).where(AppAnnotationSetting.app_id == e.app_id)
        )

    assert add(pipeline, e) == "reply disabled"
    assert annotations.annotation_vectors(e.app_id) == {}


def test_add_with_a_missing_binding_fails_for_good(pipeline: Pipeline, e: Enabled) -> None:
    with pytest.raises(store.BindingNotFound):
        add(pipeline, e, binding_id=uuid.uuid4())


def test_embedding_endpoint_503_then_200_leaves_one_vector(
    httpserver: HTTPServer, pipeline: Pipeline, e: Enabled
) -> None:
    local = LocalEmbedder(16)
    replies = iter([503, 200])

    def handle(request: Request) -> Response:
        if next(replies) == 503:
            return Response(json.dumps({"error": {"message": "overloaded"}}), 503)
        vectors = local.embed(request.get_json()["input"]).vectors
        body = {"data": [{"index": i, "embedding": v} for i, v in enumerate(vectors)]}
        return Response(json.dumps(body), 200, content_type="application/json")

    httpserver.expect_request("/v1/embeddings").respond_with_handler(handle)
    remote = OpenAIEmbedder(httpserver.url_for("/v1"), "key", "text-embedding-3-small")
    flaky = dataclasses.replace(pipeline, embedder=remote)

    with pytest.raises(TransientError):
        add(flaky, e)
    assert annotations.vectors(e.binding.collection, e.app_id) == {}

    assert add(flaky, e) == "indexed"
    assert len(annotations.vectors(e.binding.collection, e.app_id)) == 1


def delete(e: Enabled) -> str:
    return run(index.delete_annotation_index, annotation_id=e.annotation_id, app_id=e.app_id)


def test_delete_removes_the_vector_from_every_annotation_collection_and_nothing_else(
    pipeline: Pipeline, e: Enabled
) -> None:
    add(pipeline, e)
    old = annotations.binding("model-old")
    with db.session_scope() as session:
        items = store.embed(pipeline, uuid.UUID(e.app_id), {uuid.UUID(e.annotation_id): "stale"})
        pipeline.vectors.upsert(session, old.collection, items)
        session.execute(sa.delete(MessageAnnotation).where(MessageAnnotation.id == e.annotation_id))

    assert delete(e) == "deleted 2 vector(s)"
    assert annotations.annotation_vectors(e.app_id) == {}
    assert e.other_node in annotations.vectors(e.binding.collection)
    assert delete(e) == "deleted 0 vector(s)", "idempotent"


def test_delete_leaves_an_annotation_that_exists_again(pipeline: Pipeline, e: Enabled) -> None:
    add(pipeline, e)

    assert delete(e) == "annotation exists"
    assert e.annotation_id in annotations.vectors(e.binding.collection, e.app_id)
