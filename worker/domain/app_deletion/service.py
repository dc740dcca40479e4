"""Deleting an app: the app-side service and what the job does.

:func:`delete_app` runs in the app's transaction: it deletes the ``apps`` row (its small
configuration tables, annotations and dataset joins cascade) and defers the job in the same
session, so both commit or neither does. :func:`remove_app_data` is the job: it never strips a
live app, then walks :mod:`~worker.domain.app_deletion.steps` in batches of at most 1,000 rows,
one short transaction each, and returns the rows deleted per table.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Mapping
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy import orm

from worker.domain import sources
from worker.domain.app_deletion import steps
from worker.domain.app_deletion.batches import BATCH, Deleter
from worker.domain.cleanup import purge
from worker.domain.errors import TransientError
from worker.domain.models import App, Message, MessageFile
from worker.domain.ports import Storage
from worker.domain.uow import UnitOfWork

logger = logging.getLogger(__name__)


class AppStillExists(TransientError):
    """The app to delete still exists: its deletion has not committed."""


class Deferrable(Protocol):
    """The deletion task, deferred in the caller's session (``worker.jobs.CeleryTask``)."""

    def apply_async(
        self, *, kwargs: Mapping[str, Any], session: orm.Session | None = None
    ) -> object: ...


def delete_app(session: orm.Session, app_id: str, *, remove: Deferrable) -> bool:
    """Delete an app and defer ``remove_app_and_related_data_task`` in ``session``.

    Returns ``False`` (and defers nothing) when the app does not exist.
    """
    app = session.get(App, sources.as_uuid(app_id, what="app id"), with_for_update=True)
    if app is None:
        return False
    kwargs = {"tenant_id": str(app.tenant_id), "app_id": str(app.id)}
    session.execute(sa.delete(App).where(App.id == app.id))
    remove.apply_async(kwargs=kwargs, session=session)
    return True


def remove_app_data(
    uow: UnitOfWork, storage: Storage, tenant_id: str, app_id: str, *, job_id: int | None = None
) -> dict[str, int]:
    """Delete everything a deleted app left behind; rows deleted per table.

    Parameters
    ----------
    job_id:
        The job running it, whose progress each batch records (``None``: not recorded).

    Raises
    ------
    AppStillExists
        The ``apps`` row is still there: nothing is deleted.
    DeletionFailed
        A batch failed; it names the table. What was deleted stays deleted; a re-run resumes.
    """
    tenant = sources.as_uuid(tenant_id, what="tenant id")
    app = sources.as_uuid(app_id, what="app id")
    with uow.step() as session:
        if session.scalar(sa.select(App.id).where(App.id == app)) is not None:
            raise AppStillExists(f"app {app} still exists: its data is not deleted")
    deleter = Deleter(uow, job_id)
    for step in steps.BEFORE_MESSAGES:
        _run(deleter, step, tenant, app)
    _messages(deleter, storage, app)
    for step in steps.AFTER_MESSAGES:
        _run(deleter, step, tenant, app)
    deleter.raw(steps.VECTORS, "app_deletion_annotation_vectors", app_id=str(app))
    deleter.finish(uow.session)
    deleted = {name: deleter.deleted.get(name, 0) for name in steps.outcome_tables()}
    logger.info(
        "app %s: deleted %d row(s) of its data",
        app, sum(deleted.values()),
        extra={"action": "app_data_deleted", "app_id": str(app), "tenant_id": str(tenant)},
    )  # fmt: skip
    return deleted


def _run(deleter: Deleter, step: steps.Step, tenant: uuid.UUID, app: uuid.UUID) -> None:
    table = step.table
    conditions = [getattr(table, step.column) == app]
    if step.by_tenant:
        conditions.append(table.tenant_id == tenant)
    deleter.keyset(table, *conditions)


def _messages(deleter: Deleter, storage: Storage, app: uuid.UUID) -> None:
    """Messages 1,000 at a time: their uploads (blob, then row), their children, then them."""
    last: uuid.UUID | None = None
    while True:
        chosen = sa.select(Message.id).where(Message.app_id == app)
        if last is not None:
            chosen = chosen.where(Message.id > last)
        with deleter.batch("messages") as session:
            ids = list(session.scalars(chosen.order_by(Message.id).limit(BATCH)))
            files = [
                str(f)
                for f in session.scalars(
                    sa.select(MessageFile.upload_file_id).where(
                        MessageFile.message_id.in_(ids), MessageFile.upload_file_id.is_not(None)
                    )
                )
            ]
        if not ids:
            return
        if files:
            deleter.guarded(
                steps.UPLOADS, functools.partial(purge.delete_files, deleter.uow, storage, files)
            )
        for child in steps.MESSAGE_CHILDREN:
            deleter.all_of(child, child.message_id.in_(ids))
        deleter.all_of(Message, Message.id.in_(ids))
        if len(ids) < BATCH:
            return
        last = max(ids)
