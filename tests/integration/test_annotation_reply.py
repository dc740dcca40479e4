"""Enabling and disabling annotation replies, in-process on a real database."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests import annotations, factories
from tests.uow import run
from worker import db, runtime
from worker.config import Settings
from worker.domain import job_status, sql
from worker.domain.annotation import reply, store
from worker.domain.embedding import LocalEmbedder
from worker.domain.models import EmbeddingVector, JobKind, MessageAnnotation
from worker.domain.pipeline import Pipeline
from worker.domain.ports import EmbeddingBatch

ENABLE = JobKind.ANNOTATION_REPLY_ENABLE
DISABLE = JobKind.ANNOTATION_REPLY_DISABLE


@pytest.fixture(autouse=True)
def task_layer(database_url: str, tmp_path: Path) -> Iterator[runtime.Runtime]:
    settings = Settings(storage_local_path=tmp_path / "storage", indexing_batch_size=2)
    yield runtime.setup(database_url, settings=settings)
    runtime.teardown()


@pytest.fixture
def pipeline() -> Pipeline:
    return runtime.current().pipeline


@dataclass
class World:
    tenant_id: str
    app_id: str
    other_app_id: str
    annotation_ids: list[str]


@pytest.fixture
def world() -> World:
    """App ``app_id`` with three annotations, ``other_app_id`` of the same tenant with two."""
    with db.session_scope() as session:
        tenant = factories.make_tenant(session)
        app = annotations.make_app(session, tenant)
        other = annotations.make_app(session, tenant, name="Other bot")
        ids = [
            str(annotations.make_annotation(session, app, q).id)
            for q in ("How do I reset my password?", "Where is my invoice?", "Can I export data?")
        ]
        annotations.make_annotation(session, other, "What are your opening hours?")
        annotations.make_annotation(session, other, "Do you ship abroad?")
        return World(str(tenant.id), str(app.id), str(other.id), ids)


def enable(pipeline: Pipeline, world: World, app_id: str, model: str, **overrides: object) -> str:
    job_id = str(uuid.uuid4())
    arguments = {
        "job_id": job_id,
        "app_id": app_id,
        "tenant_id": world.tenant_id,
        "user_id": str(factories.USER),
        "score_threshold": 0.9,
        "embedding_provider_name": "openai",
        "embedding_model_name": model,
        **overrides,
    }
    assert run(reply.enable_reply, pipeline, **arguments) == "enabled"
    return job_id


def status(kind: JobKind, job_id: str) -> dict[str, str]:
    with db.session_scope() as session:
        return job_status.read(session, kind, job_id)


def test_enable_with_three_annotations_leaves_setting_vectors_and_completed_status(
    pipeline: Pipeline, world: World
) -> None:
    job_id = enable(pipeline, world, world.app_id, "text-embedding-3-small")

    binding = annotations.binding("text-embedding-3-small")
    assert annotations.setting_of(world.app_id) == (binding.id, 0.9)
    found = annotations.vectors(binding.collection, world.app_id)
    assert set(found) == set(world.annotation_ids)
    assert "Where is my invoice?" in found.values()
    with db.session_scope() as session:
        metadata = session.scalar(
            sa.select(EmbeddingVector.metadata_).where(
                EmbeddingVector.node_id == world.annotation_ids[0]
            )
        )
    assert metadata == {
        "doc_id": world.annotation_ids[0],
        "annotation_id": world.annotation_ids[0],
        "app_id": world.app_id,
    }
    assert status(ENABLE, job_id) == {"job_id": job_id, "job_status": "completed", "error_msg": ""}


def test_enable_again_with_another_model_moves_vectors_and_spares_the_other_app(
    pipeline: Pipeline, world: World
) -> None:
    enable(pipeline, world, world.other_app_id, "model-a")
    enable(pipeline, world, world.app_id, "model-a")
    model_a = annotations.binding("model-a")
    other_before = annotations.vectors(model_a.collection, world.other_app_id)
    assert len(other_before) == 2

    enable(pipeline, world, world.app_id, "model-b", score_threshold=0.7)

    model_b = annotations.binding("model-b")
    assert annotations.annotation_vectors(world.app_id) == {
        model_b.collection: set(world.annotation_ids)
    }
    assert annotations.setting_of(world.app_id) == (model_b.id, 0.7)
    assert annotations.vectors(model_a.collection, world.other_app_id) == other_before


def test_enable_twice_with_one_model_keeps_one_vector_per_annotation_and_one_binding(
    pipeline: Pipeline, world: World
) -> None:
    enable(pipeline, world, world.app_id, "model-a")
    with db.session_scope() as session:
        session.execute(
            sa.delete(MessageAnnotation).where(MessageAnnotation.id == world.annotation_ids[0])
        )

    enable(pipeline, world, world.app_id, "model-a")

    collection = annotations.binding("model-a").collection
    assert set(annotations.vectors(collection, world.app_id)) == set(world.annotation_ids[1:])
    assert annotations.binding_count() == 1


class AddingEmbedder:
    """Embeds locally; on its first call, adds an annotation to the app and edits another
    (as the console would while an enable runs)."""

    def __init__(self, app_id: str, edited_id: str) -> None:
        self.inner = LocalEmbedder(32)
        self.provider, self.model = self.inner.provider, self.inner.model
        self.app_id, self.edited_id, self.calls = app_id, edited_id, 0

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    def embed(self, texts: Sequence[str]) -> EmbeddingBatch:
        self.calls += 1
        if self.calls == 1:
            with db.session_scope() as session:
                annotations.make_annotation(session, uuid.UUID(self.app_id), "Added meanwhile?")
                session.execute(
                    sa.update(MessageAnnotation)
                    .where(MessageAnnotation.id == self.edited_id)
                    .values(question="Edited meanwhile?")
                )
        return self.inner.embed(texts)


def test_annotations_added_or_edited_during_enable_end_indexed_with_their_text(
    pipeline: Pipeline, world: World
) -> None:
    adding = dataclasses.replace(
        pipeline, embedder=AddingEmbedder(world.app_id, world.annotation_ids[1])
    )

    enable(adding, world, world.app_id, "model-a")

    found = annotations.vectors(annotations.binding("model-a").collection, world.app_id)
    assert len(found) == 4
    assert {"Added meanwhile?", "Edited meanwhile?"} <= set(found.values())
    assert "Where is my invoice?" not in found.values()


def test_enable_of_a_missing_app_fails_and_its_status_says_so(
    pipeline: Pipeline, world: World
) -> None:
    job_id = str(uuid.uuid4())
    missing = str(uuid.uuid4())

    with pytest.raises(store.AppNotFound):
        run(
            reply.enable_reply, pipeline, job_id=job_id, app_id=missing,
            tenant_id=world.tenant_id, user_id=str(factories.USER), score_threshold=0.9,
            embedding_provider_name="openai", embedding_model_name="model-a",
        )  # fmt: skip

    answer = status(ENABLE, job_id)
    assert answer["job_status"] == "error"
    assert "App not found" in answer["error_msg"]
    assert annotations.setting_of(missing) is None


def test_enable_failing_for_good_records_error_and_keeps_the_old_setting(
    pipeline: Pipeline, world: World
) -> None:
    enable(pipeline, world, world.app_id, "model-a")
    model_a = annotations.binding("model-a")
    job_id = str(uuid.uuid4())

    failing = dataclasses.replace(pipeline, embedder=FailingEmbedder())
    with pytest.raises(RuntimeError):
        run(
            reply.enable_reply, failing, job_id=job_id, app_id=world.app_id,
            tenant_id=world.tenant_id, user_id=str(factories.USER), score_threshold=0.5,
            embedding_provider_name="openai", embedding_model_name="model-b",
        )  # fmt: skip

    assert status(ENABLE, job_id)["error_msg"] == "embedding model exploded"
    assert annotations.setting_of(world.app_id) == (model_a.id, 0.9)
    assert set(annotations.vectors(model_a.collection, world.app_id)) == set(world.annotation_ids)


class FailingEmbedder:
    provider, model, dimension = "test", "failing", 32

    def embed(self, texts: Sequence[str]) -> EmbeddingBatch:
        raise RuntimeError("embedding model exploded")


def disable(world: World, app_id: str, job_id: str | None = None) -> tuple[str, str]:
    job_id = job_id or str(uuid.uuid4())
    outcome = run(reply.disable_reply, job_id=job_id, app_id=app_id, tenant_id=world.tenant_id)
    return job_id, outcome


def test_disable_deletes_only_the_apps_vectors_and_its_setting(
    pipeline: Pipeline, world: World
) -> None:
    enable(pipeline, world, world.app_id, "model-a")
    enable(pipeline, world, world.other_app_id, "model-a")
    collection = annotations.binding("model-a").collection

    job_id, outcome = disable(world, world.app_id)

    assert outcome == "disabled"
    assert annotations.annotation_vectors(world.app_id) == {}
    assert annotations.setting_of(world.app_id) is None
    assert len(annotations.vectors(collection, world.other_app_id)) == 2
    assert annotations.setting_of(world.other_app_id) is not None
    assert status(DISABLE, job_id)["job_status"] == "completed"


def test_disabling_twice_is_completed_already_disabled(pipeline: Pipeline, world: World) -> None:
    enable(pipeline, world, world.app_id, "model-a")
    disable(world, world.app_id)

    job_id, outcome = disable(world, world.app_id)

    assert outcome == "already disabled"
    assert status(DISABLE, job_id)["job_status"] == "completed"


def test_disable_of_a_missing_app_ends_in_error(world: World) -> None:
    job_id = str(uuid.uuid4())

    with pytest.raises(store.AppNotFound):
        disable(world, str(uuid.uuid4()), job_id)

    assert status(DISABLE, job_id)["job_status"] == "error"


def test_the_app_vector_delete_uses_the_collection_app_index(
    pipeline: Pipeline, world: World
) -> None:
    enable(pipeline, world, world.app_id, "model-a")
    with db.session_scope() as session:
        session.execute(sa.text("SET LOCAL enable_seqscan = off"))
        plan = "\n".join(
            session.scalars(
                sa.text("EXPLAIN " + sql.queries()["annotation_vectors_delete_app"]),
                {"app_id": world.app_id, "keep": None},
            )
        )
    assert "ix_embedding_vectors_collection_app_id" in plan
