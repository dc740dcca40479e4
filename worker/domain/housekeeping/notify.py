"""Dify's ``mail_clean_document_notify_task``: tell each workspace's owner which knowledge bases
had documents disabled for lack of use.

The weekly scan lists the workspaces with logs not notified yet and defers one job per workspace
(:func:`pending_tenants`), so that one workspace's failure (no owner, a refused address) does
not stop the others. Each job (:func:`notify_tenant`) reads the logs, mails the owner (outside
any transaction) and flips the logs it reported to ``notified`` in the job's final transaction,
together with the mail's ``sent`` record: a crash before that commit mails again, never loses
the notice. When billing is configured, sandbox workspaces are not mailed (Dify's rule) but
their logs are marked notified.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from worker.domain import mail
from worker.domain.errors import PermanentError
from worker.domain.mail_templates import EmailType
from worker.domain.models import (
    Account,
    Dataset,
    DatasetAutoDisableLog,
    Tenant,
    TenantAccountJoin,
    TenantAccountRole,
)
from worker.domain.uow import UnitOfWork

logger = logging.getLogger(__name__)


class WorkspaceWithoutOwner(PermanentError):
    """The workspace has no owner to notify."""


def _never(exc: BaseException) -> bool:
    return False


def parse_tenant(tenant_id: str) -> uuid.UUID:
    """A workspace id argument.

    Raises
    ------
    PermanentError
        Not a UUID.
    """
    try:
        return uuid.UUID(tenant_id)
    except ValueError:
        raise PermanentError(f"tenant_id {tenant_id!r} is not a UUID") from None


def pending_tenants(session: orm.Session) -> list[uuid.UUID]:
    """Workspaces with auto-disable logs not notified yet."""
    return list(
        session.scalars(
            sa.select(DatasetAutoDisableLog.tenant_id)
            .where(DatasetAutoDisableLog.notified.is_(False))
            .distinct()
            .order_by(DatasetAutoDisableLog.tenant_id)
        )
    )


def notify_tenant(
    uow: UnitOfWork,
    service: mail.MailService,
    tenant_id: uuid.UUID,
    *,
    job_id: int,
    skip_plan: str | None = None,
    retrying: mail.Retrying | None = None,
) -> dict[str, Any]:
    """Mail the workspace's owner the knowledge bases whose documents were disabled, and mark
    the reported logs notified (see the module docstring).

    Raises
    ------
    WorkspaceWithoutOwner
        Nobody owns the workspace (its logs stay unnotified).
    mail.MailNotConfigured, PermanentError, TransientError
        As :func:`worker.domain.mail.send_templated`.
    """
    with uow.step() as session:
        logs = session.execute(
            sa.select(DatasetAutoDisableLog.id, Dataset.name)
            .join(Dataset, Dataset.id == DatasetAutoDisableLog.dataset_id)
            .where(DatasetAutoDisableLog.tenant_id == tenant_id)
            .where(DatasetAutoDisableLog.notified.is_(False))
        ).all()
        plan = session.scalar(sa.select(Tenant.plan).where(Tenant.id == tenant_id))
        owner = _owner(session, tenant_id)
    ids = [row.id for row in logs]
    outcome: dict[str, Any] = {"tenant_id": str(tenant_id), "documents": len(ids)}
    if not ids:
        return outcome | {"mailed": False}
    if skip_plan is None or plan != skip_plan:
        if owner is None:
            raise WorkspaceWithoutOwner(f"workspace {tenant_id} has no owner to notify")
        counts = Counter(row.name for row in logs)
        details = [f"Knowledge base {name}: {n} documents" for name, n in sorted(counts.items())]
        mail.send_templated(
            uow, service, job_id=job_id, email_type=EmailType.DOCUMENT_CLEAN_NOTIFY,
            language=owner.interface_language, to=owner.email, retrying=retrying or _never,
            context={"userName": owner.name, "knowledge_details": details,
                     "url": service.link("/datasets")},
        )  # fmt: skip
        outcome["mailed"] = True
    else:
        outcome["mailed"] = False
    uow.session.execute(
        sa.update(DatasetAutoDisableLog)
        .where(DatasetAutoDisableLog.id.in_(ids))
        .values(notified=True)
    )
    logger.info(
        "workspace %s: %d disabled document(s) %s",
        tenant_id, len(ids), "reported to its owner" if outcome["mailed"] else "marked notified",
        extra={"action": "document_clean_notified", "tenant_id": str(tenant_id)},
    )  # fmt: skip
    return outcome


def _owner(session: orm.Session, tenant_id: uuid.UUID) -> Account | None:
    return session.scalars(
        sa.select(Account)
        .join(TenantAccountJoin, TenantAccountJoin.account_id == Account.id)
        .where(
            TenantAccountJoin.tenant_id == tenant_id,
            TenantAccountJoin.role == TenantAccountRole.OWNER,
        )
        .limit(1)
    ).first()
