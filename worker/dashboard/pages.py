"""What the job, knowledge, schedule and mail pages read (the overview and the jobs list have
modules of their own)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import orm

from worker.config import STUCK_DOCUMENT_AFTER, Settings
from worker.dashboard.store import q
from worker.domain import indexing
from worker.jobs import admin
from worker.maintenance import schedule, status

#: Rows of each list on the knowledge and mail pages.
LIST_LIMIT = 50
#: Name of the stuck-document sweep in the schedule table.
SWEEP = "recover_stuck_documents"


def job(session: orm.Session, job_id: int) -> dict[str, Any]:
    """One job as ``manage.py jobs show`` sees it (secret arguments masked), with its event
    timeline and the Dify job statuses it writes.

    Raises
    ------
    worker.jobs.admin.JobCommandError
        No job has that id.
    """
    details = admin.show_job(session, job_id)
    details["events"] = list(session.execute(q("job_events"), {"id": job_id}))
    details["job_statuses"] = list(session.execute(q("job_statuses_of_job"), {"id": job_id}))
    return details


@dataclass(frozen=True, kw_only=True)
class DatasetRow:
    """A dataset's documents by indexing status."""

    id: str
    name: str
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def completed_percent(self) -> int:
        return round(100 * self.counts.get("completed", 0) / self.total) if self.total else 0


def knowledge(session: orm.Session, settings: Settings, now: datetime) -> dict[str, Any]:
    """Datasets and their documents by status, documents in progress with their segments'
    progress, stuck and failed documents, and the recovery sweep's last run."""
    counts: dict[tuple[str, str], dict[str, int]] = {}
    for row in session.execute(q("dataset_documents"), {"limit": LIST_LIMIT}):
        per_status = counts.setdefault((str(row.id), row.name), {})  # also with no document
        if row.status is not None:
            per_status[row.status] = row.documents
    stuck = {
        document_id
        for document_id, _, _ in indexing.stuck_documents(session, older_than=STUCK_DOCUMENT_AFTER)
    }
    sweep = next((j for j in status.jobs(session, schedule.table(settings), now=now)
                  if j.name == SWEEP), None)  # fmt: skip
    return {
        "datasets": [DatasetRow(id=k[0], name=k[1], counts=v) for k, v in counts.items()],
        "in_progress": list(session.execute(q("documents_in_progress"), {"limit": LIST_LIMIT})),
        "stuck": stuck,
        "failed": list(session.execute(q("failed_documents"), {"limit": LIST_LIMIT})),
        "sweep": sweep,
        "sweep_job": session.execute(
            q("last_job_of_task"), {"task": "indexing.recover_stuck_documents"}
        ).first(),
        "stuck_after": STUCK_DOCUMENT_AFTER,
    }


def scheduled(session: orm.Session, settings: Settings, now: datetime) -> dict[str, Any]:
    """Every periodic job with its last and next tick, and the leader."""
    return {
        "jobs": status.jobs(session, schedule.table(settings), now=now),
        "leader": status.leader(session),
    }


def mail(session: orm.Session) -> dict[str, Any]:
    """Deliveries by status and the latest errors."""
    return {
        "by_status": list(session.execute(q("mail_by_status"))),
        "errors": list(session.execute(q("mail_errors"), {"limit": LIST_LIMIT})),
    }


def recent_actions(session: orm.Session) -> list[Any]:
    """The latest actions taken through the dashboard."""
    return list(session.execute(q("actions_recent"), {"limit": LIST_LIMIT}))
