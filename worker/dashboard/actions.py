"""The operators' actions: retry a failed job, cancel a waiting one, recover a stuck document,
pause and resume a queue's fetching.

Job status changes go through ``worker.jobs.admin`` (and so ``worker.jobs.state``, the only
writer of job status), as ``manage.py jobs retry|cancel`` do; a document's recovery is the
stuck-document sweep's own deferral. Each action commits with its row in ``dashboard_actions``
(who, from where, what, and what came of it) and is logged; a refused action is recorded too.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from procrastinate.exceptions import AlreadyEnqueued
from sqlalchemy import orm

from worker import queues
from worker.dashboard.store import Store, q
from worker.domain.models import UNFINISHED_INDEXING_STATUSES
from worker.jobs import admin

logger = logging.getLogger(__name__)


class ActionRefused(Exception):
    """The action cannot be done as asked; the message says why."""


@dataclass(frozen=True, kw_only=True)
class Actor:
    """Who acts: the name given at sign-in, and the address the request came from."""

    name: str
    remote_addr: str | None


ACTIONS = ("retry", "cancel", "recover", "pause", "resume")


def perform(store: Store, actor: Actor, action: str, target: str) -> str:
    """Do ``action`` on ``target`` (a job id, a document id or a queue name) as ``actor``;
    return what happened.

    Raises
    ------
    ActionRefused
        Unknown action, a malformed target, or the target's state does not allow it (recorded
        in the action log all the same).
    """
    handler = _HANDLERS.get(action)
    if handler is None:
        raise ActionRefused(f"unknown action {action!r}; known: {', '.join(ACTIONS)}")
    try:
        with store.write() as session:
            outcome = handler(session, actor, target)
            _record(session, actor, action, target, outcome)
    except (ActionRefused, admin.JobCommandError) as exc:
        with store.write() as session:
            _record(session, actor, action, target, f"refused: {exc}")
        logger.warning(
            "dashboard %s of %s by %s refused: %s", action, target, actor.name, exc,
            extra={"action": f"dashboard_{action}_refused", "actor": actor.name},
        )  # fmt: skip
        raise ActionRefused(str(exc)) from None
    logger.info(
        "dashboard %s of %s by %s (%s): %s", action, target, actor.name, actor.remote_addr,
        outcome, extra={"action": f"dashboard_{action}", "actor": actor.name},
    )  # fmt: skip
    return outcome


def _record(session: orm.Session, actor: Actor, action: str, target: str, outcome: str) -> None:
    session.execute(
        q("record_action"),
        {
            "actor": actor.name,
            "remote_addr": actor.remote_addr,
            "action": action,
            "target": target[:256],
            "outcome": outcome,
        },
    )


def _job_id(target: str) -> int:
    if not target.isdigit() or not 1 <= int(target) <= admin.MAX_JOB_ID:
        raise ActionRefused(f"{target[:40]!r} is not a job id")
    return int(target)


def _queue(target: str) -> str:
    if target not in queues.ALL_QUEUES:
        raise ActionRefused(f"unknown queue {target[:40]!r}; known: {', '.join(queues.ALL_QUEUES)}")
    return target


def _retry(session: orm.Session, actor: Actor, target: str) -> str:
    admin.retry_job(session, _job_id(target))
    return "queued again"


def _cancel(session: orm.Session, actor: Actor, target: str) -> str:
    return admin.cancel_job(session, _job_id(target))


def _recover(session: orm.Session, actor: Actor, target: str) -> str:
    from worker.tasks.indexing import RECOVER_QUEUEING_LOCK, recover_document_indexing_task

    try:
        document_id = uuid.UUID(target)
    except ValueError:
        raise ActionRefused(f"{target[:40]!r} is not a document id") from None
    row = session.execute(q("document_for_recovery"), {"id": str(document_id)}).first()
    if row is None:
        raise ActionRefused(f"no document {document_id}")
    if row.status not in UNFINISHED_INDEXING_STATUSES or row.is_paused:
        state = "paused" if row.is_paused else row.status
        raise ActionRefused(f"document {document_id} is {state}: only documents left in "
                            "progress are recovered")  # fmt: skip
    try:
        result = recover_document_indexing_task.apply_async(
            args=(str(row.dataset_id), str(document_id)),
            queueing_lock=RECOVER_QUEUEING_LOCK.format(document_id=document_id),
            session=session,
        )
    except AlreadyEnqueued:
        raise ActionRefused(f"a recovery of document {document_id} already waits") from None
    return f"recovery deferred as job {result.id}"


def _pause(session: orm.Session, actor: Actor, target: str) -> str:
    paused = session.execute(
        q("pause_queue"), {"queue": _queue(target), "actor": actor.name}
    ).first()
    return "paused" if paused else "already paused"


def _resume(session: orm.Session, actor: Actor, target: str) -> str:
    resumed = session.execute(q("resume_queue"), {"queue": _queue(target)}).first()
    return "resumed" if resumed else "was not paused"


_HANDLERS: dict[str, Callable[[orm.Session, Actor, str], str]] = {
    "retry": _retry,
    "cancel": _cancel,
    "recover": _recover,
    "pause": _pause,
    "resume": _resume,
}
