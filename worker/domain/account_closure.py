"""Closing an account (``delete_account_task``): through the billing service, or locally.

With billing enabled the billing service deletes the account (Dify's cloud); the request is
made with no transaction open. Without it (every self-hosted install, where Dify's task always
failed) the account is closed here, in the job's final transaction: its memberships removed,
its status ``closed`` (the row stays for the audit columns that point at it). Either way the
"account deleted" mail is deferred in that same final transaction, in the account's language:
it goes out if and only if the closure committed. A missing account is a success with nothing
sent; the only owner of a workspace that has other members is refused (the workspace would be
left without anyone able to manage it): transfer the ownership first.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy import orm

from worker.domain import sources
from worker.domain.billing import Billing
from worker.domain.errors import PermanentError
from worker.domain.models import Account, AccountStatus, TenantAccountJoin, TenantAccountRole
from worker.domain.uow import UnitOfWork

logger = logging.getLogger(__name__)

#: Language of the mail when the account has none (Dify's default).
DEFAULT_LANGUAGE = "en-US"


class SoleOwner(PermanentError):
    """The account is the only owner of a workspace that has other members."""


class Deferrable(Protocol):
    """The mail task, deferred in the job's session (``worker.jobs.CeleryTask``)."""

    def apply_async(
        self, *, kwargs: Mapping[str, Any], session: orm.Session | None = None
    ) -> object: ...


def close_account(
    uow: UnitOfWork, account_id: str, *, billing: Billing | None, mail: Deferrable
) -> dict[str, Any]:
    """Close an account (through ``billing`` when given) and defer the mail with it.

    Raises
    ------
    SoleOwner
        The account is the only owner of a workspace with other members: nothing changes.
    TransientError, PermanentError
        The billing service failed (see :meth:`Billing.delete_account`).
    """
    account = sources.as_uuid(account_id, what="account id")
    if billing is not None:
        with uow.step() as session:
            found = _locked(session, account)
            if found is not None:
                _refuse_sole_owner(session, found)
                email, language = found.email, found.interface_language
        if found is None:
            return _missing(account)
        billing.delete_account(str(account))  # no transaction open
        _defer_mail(uow.session, mail, email, language)
        return {"account_id": str(account), "closed_by": "billing", "mail": True}
    session = uow.session
    found = _locked(session, account)
    if found is None:
        return _missing(account)
    if found.status is AccountStatus.CLOSED:
        logger.info(
            "account %s is already closed", account,
            extra=_extra(account, "account_already_closed"),
        )  # fmt: skip
        return {"account_id": str(account), "closed_by": None, "mail": False}
    _refuse_sole_owner(session, found)
    left = _memberless_workspaces(session, account)
    session.execute(sa.delete(TenantAccountJoin).where(TenantAccountJoin.account_id == account))
    found.status = AccountStatus.CLOSED
    _defer_mail(session, mail, found.email, found.interface_language)
    logger.info("account %s closed", account, extra=_extra(account, "account_closed"))
    return {
        "account_id": str(account),
        "closed_by": "local",
        "mail": True,
        "workspaces_without_members": left,
    }


def _locked(session: orm.Session, account: Any) -> Account | None:
    return session.get(Account, account, with_for_update=True, populate_existing=True)


def _missing(account: Any) -> dict[str, Any]:
    logger.info(
        "account %s not found: nothing to close", account,
        extra=_extra(account, "account_not_found"),
    )  # fmt: skip
    return {"account_id": str(account), "closed_by": None, "mail": False}


def _defer_mail(session: orm.Session, mail: Deferrable, email: str, language: str | None) -> None:
    mail.apply_async(
        kwargs={"to": email, "language": language or DEFAULT_LANGUAGE}, session=session
    )


def _refuse_sole_owner(session: orm.Session, account: Account) -> None:
    """Raise :class:`SoleOwner` naming the workspaces only ``account`` owns and others use."""
    mine = sa.orm.aliased(TenantAccountJoin)
    other = sa.orm.aliased(TenantAccountJoin)
    others = sa.select(other.id).where(
        other.tenant_id == mine.tenant_id, other.account_id != account.id
    )
    owners = others.where(other.role == TenantAccountRole.OWNER)
    stuck = session.scalars(
        sa.select(mine.tenant_id)
        .where(
            mine.account_id == account.id,
            mine.role == TenantAccountRole.OWNER,
            others.exists(),
            ~owners.exists(),
        )
        .order_by(mine.tenant_id)
        .with_for_update(of=mine)
    ).all()
    if stuck:
        raise SoleOwner(
            f"account {account.id} is the only owner of workspace(s) "
            f"{', '.join(map(str, stuck))}, which have other members: transfer the ownership "
            "first"
        )


def _memberless_workspaces(session: orm.Session, account: Any) -> list[str]:
    """Workspaces the account is the only member of (they stay, with no member)."""
    other = sa.orm.aliased(TenantAccountJoin)
    alone = sa.select(TenantAccountJoin.tenant_id).where(
        TenantAccountJoin.account_id == account,
        ~sa.select(other.id)
        .where(other.tenant_id == TenantAccountJoin.tenant_id, other.account_id != account)
        .exists(),
    )
    return [str(t) for t in session.scalars(alone.order_by(TenantAccountJoin.tenant_id))]


def _extra(account: Any, action: str) -> dict[str, str]:
    return {"action": action, "account_id": str(account)}
