"""Dify's CSV import of annotations: all or nothing, and never twice.

Every item is checked before anything is written; the first bad one fails the job, naming it.
Annotation ids derive from (job id, item index), so a re-run of the same job (a redelivery, a
retry, the same job deferred again) inserts nothing twice. When the app's replies are enabled,
the new annotations are embedded with no transaction open; then one final transaction inserts
them, upserts their vectors into the app's reply collection and records the job ``completed``.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy import orm
from sqlalchemy.dialects.postgresql import insert

from worker.domain import job_status
from worker.domain.annotation import store
from worker.domain.errors import PermanentError, TransientError
from worker.domain.job_status import Retrying
from worker.domain.models import JobKind, MessageAnnotation
from worker.domain.pipeline import Pipeline
from worker.domain.uow import UnitOfWork

logger = logging.getLogger(__name__)

#: Namespace of the uuid5 ids of imported annotations: ``uuid5(ns, "<job id>:<index>")``.
IMPORT_NAMESPACE = uuid.UUID("3f1c7a52-8d0e-4b6a-9e57-2a4c1d9b8e60")
#: Rounds before giving up when the app's reply setting keeps changing under the import.
MAX_ROUNDS = 3


class InvalidImportItem(PermanentError):
    """An item of the import is not a question with an answer."""


class ReplySettingKeptChanging(TransientError):
    """The app's annotation reply setting changed during every round of the import."""


@dataclass(frozen=True, kw_only=True)
class ImportItem:
    """One annotation to import."""

    id: uuid.UUID
    question: str
    answer: str


def _never(exc: BaseException) -> bool:
    return False


def validate(job_id: str, content_list: object) -> list[ImportItem]:
    """The items to import, with their ids.

    Raises
    ------
    InvalidImportItem
        Naming the first item (``row`` counts from 1) that is not an object with a non-empty
        ``question`` text and an ``answer`` text.
    """
    if not isinstance(content_list, list):
        raise InvalidImportItem("content_list must be a list of {question, answer} objects")
    items = []
    for index, item in enumerate(content_list):
        where = f"row {index + 1} (content_list[{index}])"
        if not isinstance(item, dict):
            raise InvalidImportItem(f"{where} is not an object with a question and an answer")
        question, answer = item.get("question"), item.get("answer")
        if not isinstance(question, str) or not question.strip():
            raise InvalidImportItem(f"{where}: 'question' is missing or empty")
        if not isinstance(answer, str):
            raise InvalidImportItem(f"{where}: 'answer' is missing or not text")
        ident = uuid.uuid5(IMPORT_NAMESPACE, f"{job_id}:{index}")
        items.append(ImportItem(id=ident, question=question, answer=answer))
    return items


def batch_import(
    uow: UnitOfWork,
    p: Pipeline,
    *,
    job_id: str,
    content_list: object,
    app_id: str,
    tenant_id: str,
    user_id: str,
    retrying: Retrying = _never,
) -> str:
    """Import the annotations (and index them when the app's replies are enabled).

    Returns ``imported <n> annotation(s)`` (0 on a re-run of a finished import). The job's
    status (kind ``annotation_batch_import``) commits with them.

    Raises
    ------
    InvalidImportItem
        Before anything is written.
    AppNotFound, BindingNotFound
        The app does not exist (or is not ``normal``); its setting names no binding.
    TransientError
        The embedder failed in a way that may pass, or the setting kept changing.
    """
    with job_status.tracking(
        uow, JobKind.ANNOTATION_BATCH_IMPORT, job_id,
        tenant_id=tenant_id, target_id=app_id, retrying=retrying,
    ):  # fmt: skip
        items = validate(job_id, content_list)
        app = store.as_uuid(app_id, what="app id")
        tenant = store.as_uuid(tenant_id, what="tenant id")
        user = store.as_uuid(user_id, what="user id")
        for _ in range(MAX_ROUNDS):
            with uow.step() as session:
                store.require_app(session, app, tenant)
                binding = store.reply_binding(session, app)
                new = _not_imported(session, items)
            texts = {item.id: item.question for item in new} if binding else {}
            vectors = store.embed(p, app, texts)  # no transaction open
            session = uow.session  # the final transaction: it commits with the job's outcome
            store.require_app(session, app, tenant)
            if store.reply_binding(session, app, lock=True) == binding:
                inserted = _insert(session, app, user, items)
                if binding is None or inserted <= texts.keys():
                    if binding is not None:
                        fresh = [v for v in vectors if uuid.UUID(v.node_id) in inserted]
                        p.vectors.upsert(session, binding.collection, fresh)
                    logger.info(
                        "app %s: %d of %d annotation(s) imported",
                        app_id, len(inserted), len(items),
                        extra={"action": "annotations_imported", "app_id": app_id},
                    )  # fmt: skip
                    return f"imported {len(inserted)} annotation(s)"
            uow.rollback()  # the setting changed, or a row vanished meanwhile: once more
        raise ReplySettingKeptChanging(f"the annotation setting of app {app_id} kept changing")


def _not_imported(session: orm.Session, items: Sequence[ImportItem]) -> list[ImportItem]:
    ids = [item.id for item in items]
    if not ids:
        return []
    found = set(
        session.scalars(sa.select(MessageAnnotation.id).where(MessageAnnotation.id.in_(ids)))
    )
    return [item for item in items if item.id not in found]


def _insert(
    session: orm.Session, app: uuid.UUID, user: uuid.UUID, items: Sequence[ImportItem]
) -> set[uuid.UUID]:
    """Insert the annotations not there yet; return the ids inserted."""
    if not items:
        return set()
    rows = [
        {"id": i.id, "app_id": app, "question": i.question, "content": i.answer, "account_id": user}
        for i in items
    ]
    statement = (
        insert(MessageAnnotation)
        .values(rows)
        .on_conflict_do_nothing(index_elements=["id"])
        .returning(MessageAnnotation.id)
    )
    return set(session.scalars(statement))
