"""One annotation in or out of its app's reply index (Dify's add/update/delete annotation tasks).

They act on the rows as they are when the job runs, not on the arguments: add and update index
the annotation's *current* text into the collection the app's reply setting points to *now*, so
whichever of two jobs runs last writes the latest question, and an annotation deleted, or an app
whose replies were disabled, before the job ran gets no vector. The vector is one upsert by
(collection, annotation id): the annotation always has exactly one vector, the old or the new.
Embedding happens with no transaction open; the final transaction re-reads the annotation and
the setting (share-locked) and writes only if its text is still the one embedded.
"""

from __future__ import annotations

import logging

from worker.domain.annotation import store
from worker.domain.errors import TransientError
from worker.domain.pipeline import Pipeline
from worker.domain.uow import UnitOfWork

logger = logging.getLogger(__name__)

#: Times the text may change between its embedding and the final transaction before the job
#: gives up (and retries later).
MAX_ROUNDS = 3


class AnnotationKeptChanging(TransientError):
    """The annotation changed while it was being embedded, again and again."""


def index_annotation(
    uow: UnitOfWork, p: Pipeline, *, annotation_id: str, app_id: str, collection_binding_id: str
) -> str:
    """Upsert the annotation's vector (its current text) into the app's reply collection.

    Returns ``indexed``, or why nothing was written (``annotation not found``, ``reply
    disabled``). ``collection_binding_id`` is where the app's replies pointed when the job was
    deferred; the vector goes where they point now (an enable with another model may have run
    in between, and moved the app's other vectors there).

    Raises
    ------
    BindingNotFound
        The given binding, or the one the setting names, does not exist.
    TransientError
        The embedder failed in a way that may pass, or the text kept changing.
    """
    annotation = store.as_uuid(annotation_id, what="annotation id")
    app = store.as_uuid(app_id, what="app id")
    binding_id = store.as_uuid(collection_binding_id, what="collection binding id")
    for _ in range(MAX_ROUNDS):
        with uow.step() as session:
            store.require_binding(session, binding_id)
            text = store.annotation_text(session, annotation, app)
            enabled = store.reply_binding(session, app) is not None
        if text is None or not enabled:
            return _skipped(annotation_id, "annotation not found" if text is None else None)
        items = store.embed(p, app, {annotation: text})  # no transaction open
        session = uow.session  # the final transaction: it commits with the job's outcome
        now = store.annotation_text(session, annotation, app, lock=True)
        binding = store.reply_binding(session, app, lock=True)
        if now is None or binding is None:
            return _skipped(annotation_id, "annotation not found" if now is None else None)
        if now == text:
            p.vectors.upsert(session, binding.collection, items)
            return "indexed"
        uow.rollback()  # edited meanwhile: embed the new text
    raise AnnotationKeptChanging(
        f"annotation {annotation_id} changed {MAX_ROUNDS} times while indexed"
    )


def delete_annotation_index(uow: UnitOfWork, *, annotation_id: str, app_id: str) -> str:
    """Delete the annotation's vector from every annotation collection (the app may have moved
    to another model since), in the job's final transaction; idempotent.

    An annotation that exists again (its row is back) keeps its vector. Returns what was done.
    """
    annotation = store.as_uuid(annotation_id, what="annotation id")
    app = store.as_uuid(app_id, what="app id")
    session = uow.session
    if store.annotation_text(session, annotation, app, lock=True) is not None:
        return _skipped(annotation_id, "annotation exists")
    deleted = store.delete_annotation_vectors(session, annotation)
    return f"deleted {deleted} vector(s)"


def _skipped(annotation_id: str, why: str | None) -> str:
    outcome = why or "reply disabled"
    logger.info(
        "annotation %s: nothing to write (%s)",
        annotation_id,
        outcome,
        extra={"action": "annotation_index_skipped", "annotation_id": annotation_id},
    )
    return outcome
