"""What the annotation services read and write: apps, reply settings, collection bindings, the
annotations' texts and their vectors.

An annotation's vector lives in the collection of an *annotation binding*
(``dataset_collection_bindings``, type ``annotation``, one per embedding provider and model),
shared by every app of every tenant that chose that model. Its node id is the annotation id, its
text the question (the answer when the question is empty), its metadata Dify's ``{doc_id,
annotation_id, app_id}``. So whatever concerns one app (enable, disable, delete) deletes by
``app_id`` or node id, never a whole collection.
"""

from __future__ import annotations

import typing
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm
from sqlalchemy.dialects.postgresql import insert

from worker.domain import sql, vectors
from worker.domain.errors import PermanentError
from worker.domain.models import (
    App,
    AppAnnotationSetting,
    AppStatus,
    CollectionBindingType,
    DatasetCollectionBinding,
    MessageAnnotation,
)
from worker.domain.pipeline import Pipeline
from worker.domain.ports import VectorItem
from worker.domain.sources import as_uuid

__all__ = ["AppNotFound", "Binding", "BindingNotFound", "as_uuid"]


class AppNotFound(PermanentError):
    """App not found."""


class BindingNotFound(PermanentError):
    """Annotation collection binding not found."""


@dataclass(frozen=True, kw_only=True)
class Binding:
    """An annotation binding: its id and the collection it names."""

    id: uuid.UUID
    collection: str


def text_of(question: str | None, content: str) -> str:
    """What an annotation is matched by: its question, or its answer when it has none."""
    return question or content


def require_app(session: orm.Session, app_id: uuid.UUID, tenant_id: uuid.UUID) -> None:
    """Check that the app exists in the tenant and is ``normal`` (share-locked until commit).

    Raises
    ------
    AppNotFound
        It does not.
    """
    found = session.scalar(
        sa.select(App.id)
        .where(App.id == app_id, App.tenant_id == tenant_id, App.status == AppStatus.NORMAL)
        .with_for_update(read=True)
    )
    if found is None:
        raise AppNotFound(f"App not found: {app_id} (tenant {tenant_id})")


def get_or_create_binding(session: orm.Session, provider_name: str, model_name: str) -> Binding:
    """The annotation binding of an embedding model, created with a new collection if none.

    ``INSERT ... ON CONFLICT DO NOTHING`` then select: two jobs creating it at once get the same.
    """
    session.execute(
        insert(DatasetCollectionBinding)
        .values(
            provider_name=provider_name,
            model_name=model_name,
            type=CollectionBindingType.ANNOTATION,
            collection_name=vectors.collection_name(str(uuid.uuid4())),
        )
        .on_conflict_do_nothing(index_elements=["provider_name", "model_name", "type"])
    )
    row = session.execute(
        sa.select(DatasetCollectionBinding.id, DatasetCollectionBinding.collection_name).where(
            DatasetCollectionBinding.provider_name == provider_name,
            DatasetCollectionBinding.model_name == model_name,
            DatasetCollectionBinding.type == CollectionBindingType.ANNOTATION,
        )
    ).one()
    return Binding(id=row.id, collection=row.collection_name)


def require_binding(session: orm.Session, binding_id: uuid.UUID) -> Binding:
    """The annotation binding with this id.

    Raises
    ------
    BindingNotFound
        There is none (or it is a dataset binding).
    """
    row = session.execute(
        sa.select(DatasetCollectionBinding.collection_name).where(
            DatasetCollectionBinding.id == binding_id,
            DatasetCollectionBinding.type == CollectionBindingType.ANNOTATION,
        )
    ).one_or_none()
    if row is None:
        raise BindingNotFound(f"Annotation collection binding not found: {binding_id}")
    return Binding(id=binding_id, collection=row.collection_name)


def reply_binding(session: orm.Session, app_id: uuid.UUID, *, lock: bool = False) -> Binding | None:
    """The binding the app's reply setting points to now; ``None`` when replies are disabled.

    Parameters
    ----------
    lock:
        Share-lock the setting until commit (it cannot change or go meanwhile).

    Raises
    ------
    BindingNotFound
        The setting exists but its binding was deleted.
    """
    query = (
        sa.select(
            AppAnnotationSetting.collection_binding_id, DatasetCollectionBinding.collection_name
        )
        .outerjoin(
            DatasetCollectionBinding,
            DatasetCollectionBinding.id == AppAnnotationSetting.collection_binding_id,
        )
        .where(AppAnnotationSetting.app_id == app_id)
    )
    if lock:
        query = query.with_for_update(read=True, of=AppAnnotationSetting)
    row = session.execute(query).one_or_none()
    if row is None:
        return None
    if row.collection_binding_id is None or row.collection_name is None:
        raise BindingNotFound(f"the annotation setting of app {app_id} names no collection binding")
    return Binding(id=row.collection_binding_id, collection=row.collection_name)


def annotation_texts(
    session: orm.Session, app_id: uuid.UUID, *, lock: bool = False
) -> dict[uuid.UUID, str]:
    """Every annotation of the app and its text (share-locked until commit with ``lock``)."""
    query = sa.select(
        MessageAnnotation.id, MessageAnnotation.question, MessageAnnotation.content
    ).where(MessageAnnotation.app_id == app_id)
    if lock:
        query = query.with_for_update(read=True)
    return {row.id: text_of(row.question, row.content) for row in session.execute(query)}


def annotation_text(
    session: orm.Session, annotation_id: uuid.UUID, app_id: uuid.UUID, *, lock: bool = False
) -> str | None:
    """The annotation's text now; ``None`` when it no longer exists (in that app)."""
    query = sa.select(MessageAnnotation.question, MessageAnnotation.content).where(
        MessageAnnotation.id == annotation_id, MessageAnnotation.app_id == app_id
    )
    if lock:
        query = query.with_for_update(read=True)
    row = session.execute(query).one_or_none()
    return None if row is None else text_of(row.question, row.content)


def embed(p: Pipeline, app_id: uuid.UUID, texts: Mapping[uuid.UUID, str]) -> list[VectorItem]:
    """The annotations' vectors (call it with no transaction open: the embedder may be remote).

    Raises
    ------
    DomainError
        What the embedder raises (``TransientError`` for HTTP 429/5xx and timeouts).
    """
    if not texts:
        return []
    embedded = p.embedder.embed(list(texts.values()))
    return [
        VectorItem(
            node_id=str(annotation_id),
            content=text,
            embedding=vector,
            metadata={
                "doc_id": str(annotation_id),
                "annotation_id": str(annotation_id),
                "app_id": str(app_id),
            },
        )
        for (annotation_id, text), vector in zip(texts.items(), embedded.vectors, strict=True)
    ]


def delete_app_vectors(session: orm.Session, app_id: uuid.UUID, *, keep: str | None = None) -> int:
    """Delete the app's vectors in every annotation collection but ``keep``; return how many."""
    return _delete("annotation_vectors_delete_app", session, app_id=str(app_id), keep=keep)


def delete_stale_vectors(
    session: orm.Session, collection: str, app_id: uuid.UUID, current: set[uuid.UUID]
) -> int:
    """Delete the app's vectors in ``collection`` of annotations not in ``current``."""
    return _delete(
        "annotation_vectors_delete_stale",
        session,
        collection=collection,
        app_id=str(app_id),
        node_ids=sorted(str(i) for i in current),
    )


def delete_annotation_vectors(session: orm.Session, annotation_id: uuid.UUID) -> int:
    """Delete one annotation's vector from every annotation collection; return how many."""
    return _delete("annotation_vectors_delete_node", session, node_id=str(annotation_id))


def _delete(name: str, session: orm.Session, **params: Any) -> int:
    result = session.execute(sa.text(sql.queries()[name]), params)
    return typing.cast("sa.CursorResult[Any]", result).rowcount
