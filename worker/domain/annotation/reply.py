"""Turning an app's annotation replies on (with an embedding model) and off.

Enable embeds every annotation of the app with no transaction open, upserting the vectors into
the model's collection batch by batch (invisible to replies: they search the collection the
setting points to, which is still the old one, or none). Its final transaction share-locks the
app's annotations and, if every one was embedded with its current text, switches at once:
deletes the app's vectors of deleted annotations in the new collection and all its vectors in
every other annotation collection, upserts the setting, and records the job ``completed``. So
replies never see a setting pointing at a collection that lacks the app's annotations, and
enabling again with another model moves them. An annotation added or edited meanwhile is
embedded in another round. A re-run after a crash redoes the same upserts and converges.

Disable is one transaction: the app's vectors, the setting, the status. Neither touches another
app's vectors in the shared collections.
"""

from __future__ import annotations

import logging
import uuid

import sqlalchemy as sa
from sqlalchemy import orm
from sqlalchemy.dialects.postgresql import insert

from worker.domain import job_status
from worker.domain.annotation import store
from worker.domain.errors import TransientError
from worker.domain.job_status import Retrying
from worker.domain.models import AppAnnotationSetting, JobKind
from worker.domain.pipeline import Pipeline
from worker.domain.uow import UnitOfWork

logger = logging.getLogger(__name__)

#: Rounds of "embed what changed" before the final transaction gives up (and retries later).
MAX_ROUNDS = 3


class AnnotationsKeptChanging(TransientError):
    """The app's annotations changed during every round of embedding."""


def _never(exc: BaseException) -> bool:
    return False


def enable_reply(
    uow: UnitOfWork,
    p: Pipeline,
    *,
    job_id: str,
    app_id: str,
    tenant_id: str,
    user_id: str,
    score_threshold: float,
    embedding_provider_name: str,
    embedding_model_name: str,
    retrying: Retrying = _never,
) -> str:
    """Index the app's annotations for ``embedding_model_name`` and point its replies there.

    Returns ``enabled``. The job's status (kind ``annotation_reply_enable``) ends ``completed``
    with the switch, or ``error`` with the reason.

    Raises
    ------
    AppNotFound
        The app does not exist in the tenant (or is not ``normal``).
    TransientError
        The embedder failed in a way that may pass, or the annotations kept changing.
    """
    with job_status.tracking(
        uow, JobKind.ANNOTATION_REPLY_ENABLE, job_id,
        tenant_id=tenant_id, target_id=app_id, retrying=retrying,
    ):  # fmt: skip
        app = store.as_uuid(app_id, what="app id")
        tenant = store.as_uuid(tenant_id, what="tenant id")
        user = store.as_uuid(user_id, what="user id")
        # The binding commits in this first step: the batches below upsert into its
        # collection in steps of their own. A binding no setting names yet is harmless.
        with uow.step() as session:
            store.require_app(session, app, tenant)
            binding = store.get_or_create_binding(
                session, embedding_provider_name, embedding_model_name
            )
        embedded: dict[uuid.UUID, str] = {}
        for _ in range(MAX_ROUNDS):
            with uow.step() as session:
                texts = store.annotation_texts(session, app)
            _embed_changed(uow, p, app, binding.collection, texts, embedded)
            session = uow.session  # the final transaction: it commits with the job's outcome
            store.require_app(session, app, tenant)
            current = store.annotation_texts(session, app, lock=True)
            if all(embedded.get(i) == text for i, text in current.items()):
                _switch(session, app, user, binding, set(current), score_threshold)
                logger.info(
                    "app %s: annotation replies enabled with %d annotation(s) in %s",
                    app_id, len(current), binding.collection,
                    extra={"action": "annotation_reply_enabled", "app_id": app_id},
                )  # fmt: skip
                return "enabled"
            uow.rollback()  # added or edited meanwhile: another round embeds them
        raise AnnotationsKeptChanging(f"the annotations of app {app_id} kept changing")


def _embed_changed(
    uow: UnitOfWork,
    p: Pipeline,
    app: uuid.UUID,
    collection: str,
    texts: dict[uuid.UUID, str],
    embedded: dict[uuid.UUID, str],
) -> None:
    """Embed the annotations whose text was not embedded yet and upsert them, a step a batch."""
    pending = [(i, text) for i, text in texts.items() if embedded.get(i) != text]
    for start in range(0, len(pending), p.batch_size):
        batch = dict(pending[start : start + p.batch_size])
        items = store.embed(p, app, batch)  # no transaction open
        with uow.step() as session:
            p.vectors.upsert(session, collection, items)
        embedded.update(batch)


def _switch(
    session: orm.Session,
    app: uuid.UUID,
    user: uuid.UUID,
    binding: store.Binding,
    current: set[uuid.UUID],
    score_threshold: float,
) -> None:
    store.delete_stale_vectors(session, binding.collection, app, current)
    store.delete_app_vectors(session, app, keep=binding.collection)
    changes = {
        "score_threshold": score_threshold,
        "collection_binding_id": binding.id,
        "updated_user_id": user,
        "updated_at": job_status.now(),
    }
    session.execute(
        insert(AppAnnotationSetting)
        .values(app_id=app, created_user_id=user, **changes)
        .on_conflict_do_update(index_elements=["app_id"], set_=changes)
    )


def disable_reply(
    uow: UnitOfWork, *, job_id: str, app_id: str, tenant_id: str, retrying: Retrying = _never
) -> str:
    """Delete the app's annotation vectors and its reply setting, in the job's final
    transaction with its ``completed`` status (kind ``annotation_reply_disable``).

    Returns ``disabled``, or ``already disabled`` when the app has no setting (idempotent).

    Raises
    ------
    AppNotFound
        The app does not exist in the tenant (or is not ``normal``).
    """
    with job_status.tracking(
        uow, JobKind.ANNOTATION_REPLY_DISABLE, job_id,
        tenant_id=tenant_id, target_id=app_id, retrying=retrying,
    ):  # fmt: skip
        app = store.as_uuid(app_id, what="app id")
        tenant = store.as_uuid(tenant_id, what="tenant id")
        session = uow.session
        store.require_app(session, app, tenant)
        setting = session.scalar(
            sa.select(AppAnnotationSetting)
            .where(AppAnnotationSetting.app_id == app)
            .with_for_update()
        )
        deleted = store.delete_app_vectors(session, app)
        if setting is None:
            outcome = "already disabled"
        else:
            session.delete(setting)
            outcome = "disabled"
        logger.info(
            "app %s: annotation replies %s (%d vector(s) deleted)",
            app_id, outcome, deleted,
            extra={"action": "annotation_reply_disabled", "app_id": app_id},
        )  # fmt: skip
        return outcome
