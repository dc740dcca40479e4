"""Dify's datasets queue monitor, for every queue: waiting jobs and the age of the oldest ready
job, from ``procrastinate_jobs``; an alert when a queue holds at least the threshold.

The alert state is a row per queue (``queue_monitor_alerts``): crossing the threshold flips it to
``alerting`` and defers the alert mails *in the same transaction*, so an alert is sent once
while it holds (not at every tick) and once even if two monitors run; going back below the
threshold clears it, and the next crossing alerts again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy import orm
from sqlalchemy.dialects.postgresql import insert

from worker import queues
from worker.domain import mail
from worker.domain.mail_templates import EmailType
from worker.domain.models import QueueMonitorAlert
from worker.domain.uow import UnitOfWork
from worker.jobs import admin

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class Reading:
    """One queue at one check."""

    queue: str
    waiting: int
    #: Seconds the oldest job ready to run has waited (``None``: none is ready).
    oldest_ready_seconds: float | None
    threshold: int
    checked_at: datetime

    @property
    def over(self) -> bool:
        return self.waiting >= self.threshold


#: Sends the alert about a reading (defers the mails) in the session's transaction.
Alert = Callable[[orm.Session, Reading], None]


def check(
    uow: UnitOfWork, *, threshold: int, alert: Alert, now: datetime | None = None
) -> list[Reading]:
    """Read every queue, alert on those newly over ``threshold``; the alert states and the
    alerts' jobs commit with the job's outcome. Returns the readings."""
    now = now or datetime.now(UTC)
    session = uow.session
    readings = [
        Reading(
            queue=stats.queue,
            waiting=stats.counts.get("todo", 0),
            oldest_ready_seconds=stats.oldest_waiting,
            threshold=threshold,
            checked_at=now,
        )
        for stats in admin.queue_stats(session, list(queues.ALL_QUEUES))
    ]
    for reading in readings:
        _update(session, reading, alert)
    return readings


def alert_arguments(reading: Reading, to: str) -> dict[str, object]:
    """Arguments of the alert mail job about ``reading`` to ``to``."""
    oldest = reading.oldest_ready_seconds
    return {
        "to": to,
        "queue_name": reading.queue,
        "queue_length": reading.waiting,
        "threshold": reading.threshold,
        "alert_time": reading.checked_at.strftime("%Y-%m-%d %H:%M:%S"),
        "oldest_ready_seconds": None if oldest is None else round(oldest, 1),
    }


def send_alert(
    uow: UnitOfWork,
    service: mail.MailService,
    *,
    job_id: int,
    to: str,
    language: str | None,
    retrying: mail.Retrying,
    **context: object,
) -> dict[str, str | None]:
    """Mail the alert (``queue_monitor_alert``) to one operator, once (see ``worker.domain.mail``).

    Raises
    ------
    mail.MailNotConfigured, PermanentError, TransientError
        As :func:`worker.domain.mail.send_templated`.
    """
    return mail.send_templated(
        uow, service, job_id=job_id, email_type=EmailType.QUEUE_MONITOR_ALERT,
        language=language, to=to, context=context, retrying=retrying,
    )  # fmt: skip


def _update(session: orm.Session, reading: Reading, alert: Alert) -> None:
    session.execute(
        insert(QueueMonitorAlert).values(queue_name=reading.queue).on_conflict_do_nothing()
    )
    state = session.scalars(
        sa.select(QueueMonitorAlert)
        .where(QueueMonitorAlert.queue_name == reading.queue)
        .with_for_update()
    ).one()
    if reading.over and not state.alerting:
        state.alerting, state.alerted_at = True, reading.checked_at
        alert(session, reading)
        logger.warning(
            "queue %s holds %d waiting job(s), threshold %d: alert sent",
            reading.queue, reading.waiting, reading.threshold,
            extra={"action": "queue_monitor_alert", "queue": reading.queue},
        )  # fmt: skip
    elif not reading.over and state.alerting:
        state.alerting, state.cleared_at = False, reading.checked_at
        logger.info(
            "queue %s back to %d waiting job(s), below %d",
            reading.queue, reading.waiting, reading.threshold,
            extra={"action": "queue_monitor_cleared", "queue": reading.queue},
        )  # fmt: skip
    state.waiting = reading.waiting
    state.oldest_ready_seconds = reading.oldest_ready_seconds
