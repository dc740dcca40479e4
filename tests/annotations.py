"""Apps, annotations and reply settings for the annotation tests, and what to count after."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from tests.factories import USER
from worker import db
from worker.domain.annotation import store
from worker.domain.models import (
    App,
    AppAnnotationSetting,
    DatasetCollectionBinding,
    EmbeddingVector,
    MessageAnnotation,
    Tenant,
)


def make_app(session: orm.Session, tenant: Tenant, **overrides: Any) -> App:
    app = App(**{"tenant_id": tenant.id, "name": "Support bot", "mode": "chat", **overrides})
    session.add(app)
    session.flush()
    return app


def make_annotation(
    session: orm.Session, app: App | uuid.UUID, question: str, answer: str = "", **overrides: Any
) -> MessageAnnotation:
    app_id = app.id if isinstance(app, App) else app
    annotation = MessageAnnotation(
        **{
            "app_id": app_id,
            "question": question,
            "content": answer or f"answer to {question}",
            "account_id": USER,
            **overrides,
        }
    )
    session.add(annotation)
    session.flush()
    return annotation


def make_setting(session: orm.Session, app: App, binding: store.Binding) -> AppAnnotationSetting:
    """Replies enabled on ``binding`` (as a finished enable leaves them)."""
    setting = AppAnnotationSetting(
        app_id=app.id,
        score_threshold=0.8,
        collection_binding_id=binding.id,
        created_user_id=USER,
        updated_user_id=USER,
    )
    session.add(setting)
    session.flush()
    return setting


def binding(model: str, provider: str = "openai") -> store.Binding:
    with db.session_scope() as session:
        return store.get_or_create_binding(session, provider, model)


def vectors(collection: str, app_id: uuid.UUID | str | None = None) -> dict[str, str]:
    """``{node_id: content}`` of a collection (of one app's nodes)."""
    query = sa.select(EmbeddingVector.node_id, EmbeddingVector.content).where(
        EmbeddingVector.collection == collection
    )
    if app_id is not None:
        query = query.where(EmbeddingVector.metadata_["app_id"].astext == str(app_id))
    with db.session_scope() as session:
        return {row.node_id: row.content for row in session.execute(query)}


def annotation_vectors(app_id: uuid.UUID | str) -> dict[str, set[str]]:
    """``{collection: node ids}`` of one app's vectors, in every collection."""
    query = sa.select(EmbeddingVector.collection, EmbeddingVector.node_id).where(
        EmbeddingVector.metadata_["app_id"].astext == str(app_id)
    )
    found: dict[str, set[str]] = {}
    with db.session_scope() as session:
        for row in session.execute(query):
            found.setdefault(row.collection, set()).add(row.node_id)
    return found


def setting_of(app_id: uuid.UUID | str) -> tuple[uuid.UUID | None, float] | None:
    """(binding id, threshold) of the app's reply setting, or ``None``."""
    with db.session_scope() as session:
        row = session.execute(
            sa.select(
                AppAnnotationSetting.collection_binding_id, AppAnnotationSetting.score_threshold
            ).where(AppAnnotationSetting.app_id == app_id)
        ).one_or_none()
    return None if row is None else (row.collection_binding_id, row.score_threshold)


def annotation_count(app_id: uuid.UUID | str) -> int:
    with db.session_scope() as session:
        return int(
            session.scalar(sa.select(sa.func.count()).where(MessageAnnotation.app_id == app_id))
            or 0
        )


def binding_count() -> int:
    with db.session_scope() as session:
        return int(session.scalar(sa.select(sa.func.count(DatasetCollectionBinding.id))) or 0)
