"""Closing an account with and without the billing service (a fake one over real HTTP), the
mail delivered to a real SMTP server exactly when the closure commits."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tests import app_scenario as scenario
from tests import factories
from tests.inprocess import drain as drain_queues
from tests.smtp import SMTPServer
from worker import db, queues, runtime
from worker.config import ConfigError, Settings
from worker.domain.models import Account, AccountStatus, TenantAccountJoin, TenantAccountRole
from worker.jobs import FAILURE, RETRY, SUCCESS
from worker.tasks.app_deletion import ACCOUNT_DELETION_RETRY, delete_account_task

SECRET = "billing-secret"


@pytest.fixture
def smtp() -> Iterator[SMTPServer]:
    with SMTPServer() as server:
        yield server


def settings(smtp: SMTPServer, tmp_path: Path, billing: HTTPServer | None = None) -> Settings:
    extra = {}
    if billing is not None:
        extra = {
            "billing_enabled": True,
            "billing_api_url": billing.url_for("/billing"),
            "billing_api_secret_key": SECRET,
        }
    return Settings(
        mail_type="smtp", smtp_server="127.0.0.1", smtp_port=smtp.port,
        mail_default_send_from="Dify <no-reply@dify.example>", storage_local_path=tmp_path,
        **extra,
    )  # fmt: skip


@pytest.fixture
def local(database_url: str, smtp: SMTPServer, tmp_path: Path) -> Iterator[None]:
    runtime.setup(database_url, settings=settings(smtp, tmp_path))
    yield
    runtime.teardown()


@pytest.fixture
def with_billing(
    database_url: str, smtp: SMTPServer, tmp_path: Path, httpserver: HTTPServer
) -> Iterator[HTTPServer]:
    runtime.setup(database_url, settings=settings(smtp, tmp_path, httpserver))
    yield httpserver
    runtime.teardown()


def drain() -> None:
    drain_queues([queues.DEFAULT, queues.MAIL])


def retry_now() -> None:
    with db.session_scope() as session:
        session.execute(
            sa.text("UPDATE procrastinate_jobs SET scheduled_at = now() WHERE status = 'todo'")
        )


def make_account(language: str | None = "en-US", email: str = "ada@example.com") -> str:
    with db.session_scope() as session:
        account = Account(name="Ada", email=email, interface_language=language)
        session.add(account)
        session.flush()
        return str(account.id)


def join(account_id: str, role: TenantAccountRole, tenant_id: uuid.UUID | None = None) -> str:
    with db.session_scope() as session:
        if tenant_id is None:
            tenant_id = factories.make_tenant(session).id
        session.add(TenantAccountJoin(tenant_id=tenant_id, account_id=account_id, role=role))
        return str(tenant_id)


def account_state(account_id: str) -> tuple[AccountStatus | None, int]:
    with db.session_scope() as session:
        status = session.scalar(sa.select(Account.status).where(Account.id == account_id))
        joins = session.scalar(
            sa.select(sa.func.count()).where(TenantAccountJoin.account_id == account_id)
        )
    return status, int(joins or 0)


def mail_jobs() -> int:
    with db.session_scope() as session:
        query = "SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'mail.deletion_success'"
        return int(session.scalar(sa.text(query)) or 0)


@pytest.mark.usefixtures("local")
def test_without_billing_the_account_is_closed_here_and_told_in_its_language(
    smtp: SMTPServer,
) -> None:
    account = make_account("zh-Hans")
    owned_alone = join(account, TenantAccountRole.OWNER)
    other_owner = make_account(email="grace@example.com")
    shared = join(other_owner, TenantAccountRole.OWNER)
    join(account, TenantAccountRole.EDITOR, uuid.UUID(shared))

    result = delete_account_task.delay(account)
    drain()

    assert result.status == SUCCESS
    outcome = result.get(timeout=5)
    assert outcome["closed_by"] == "local" and outcome["mail"] is True
    assert outcome["workspaces_without_members"] == [owned_alone]
    assert account_state(account) == (AccountStatus.CLOSED, 0)
    assert account_state(other_owner) == (AccountStatus.ACTIVE, 1)
    (received,) = smtp.received
    assert received.recipients == ["ada@example.com"]
    assert "账户已成功删除" in received.subject


@pytest.mark.usefixtures("local")
def test_no_mail_when_the_closure_does_not_commit(smtp: SMTPServer) -> None:
    account = make_account()
    join(account, TenantAccountRole.NORMAL)
    # the closure's UPDATE fails: its transaction rolls back
    scenario.refuse("accounts", "accounts are read-only today", event="UPDATE")
    result = delete_account_task.delay(account)
    drain()

    assert result.status == FAILURE
    assert "read-only today" in str(result.info)
    assert account_state(account) == (AccountStatus.ACTIVE, 1), "memberships kept too"
    assert mail_jobs() == 0 and smtp.received == []


@pytest.mark.usefixtures("local")
def test_the_only_owner_of_a_workspace_with_members_is_refused(smtp: SMTPServer) -> None:
    account = make_account()
    tenant = join(account, TenantAccountRole.OWNER)
    join(make_account(email="bob@example.com"), TenantAccountRole.NORMAL, uuid.UUID(tenant))

    result = delete_account_task.delay(account)
    drain()

    assert result.status == FAILURE
    assert f"only owner of workspace(s) {tenant}" in str(result.info)
    assert "transfer the ownership" in str(result.info)
    assert account_state(account) == (AccountStatus.ACTIVE, 1)
    assert mail_jobs() == 0 and smtp.received == []


@pytest.mark.usefixtures("local")
def test_a_missing_or_closed_account_is_a_success_with_nothing_sent(smtp: SMTPServer) -> None:
    missing = delete_account_task.delay(str(uuid.uuid4()))
    account = make_account()
    with db.session_scope() as session:
        session.execute(
            sa.update(Account).where(Account.id == account).values(status=AccountStatus.CLOSED)
        )
    closed = delete_account_task.delay(account)
    drain()

    assert missing.get(timeout=5)["mail"] is False
    assert closed.get(timeout=5)["mail"] is False
    assert mail_jobs() == 0 and smtp.received == []


def expect_delete(server: HTTPServer, account: str, status: int = 200) -> None:
    server.expect_oneshot_request(
        "/billing/account/", method="DELETE", query_string={"account_id": account},
        headers={"Billing-Api-Secret-Key": SECRET},
    ).respond_with_json({"result": "success"}, status=status)  # fmt: skip


def test_with_billing_the_service_deletes_it_and_the_mail_follows(
    with_billing: HTTPServer, smtp: SMTPServer
) -> None:
    account = make_account()
    join(account, TenantAccountRole.NORMAL)
    expect_delete(with_billing, account)

    result = delete_account_task.delay(account)
    drain()

    assert result.get(timeout=5)["closed_by"] == "billing"
    with_billing.check_assertions()
    assert account_state(account) == (AccountStatus.ACTIVE, 1), "the billing service's to do"
    (received,) = smtp.received
    assert received.recipients == ["ada@example.com"]
    assert "Successfully Deleted" in received.subject


def test_billing_unavailable_retries_and_mails_once_it_answered(
    with_billing: HTTPServer, smtp: SMTPServer
) -> None:
    account = make_account()
    expect_delete(with_billing, account, status=503)

    result = delete_account_task.delay(account)
    drain()
    assert result.status == RETRY and "503" in str(result.info)
    assert mail_jobs() == 0 and smtp.received == []

    expect_delete(with_billing, account)
    retry_now()
    drain()
    assert result.status == SUCCESS
    assert len(smtp.received) == 1


def test_a_billing_refusal_fails_at_once_and_sends_nothing(
    with_billing: HTTPServer, smtp: SMTPServer
) -> None:
    account = make_account()
    calls: list[Request] = []

    def refuse(request: Request) -> Response:
        calls.append(request)
        return Response('{"message": "account has an unpaid invoice"}', status=409)

    with_billing.expect_request("/billing/account/", method="DELETE").respond_with_handler(refuse)
    result = delete_account_task.delay(account)
    drain()

    assert result.status == FAILURE
    assert "409" in str(result.info)
    assert len(calls) == 1, f"not retried (policy: {ACCOUNT_DELETION_RETRY.max_retries})"
    assert mail_jobs() == 0 and smtp.received == []


def test_billing_enabled_needs_its_url_and_key() -> None:
    with pytest.raises(ConfigError, match="BILLING_ENABLED=true needs BILLING_API_URL"):
        Settings.from_env({"BILLING_ENABLED": "true", "BILLING_API_URL": "https://b.example"})
    with pytest.raises(ConfigError, match="BILLING_API_URL: expected an http"):
        Settings.from_env({"BILLING_API_URL": "billing"})
    assert not Settings.from_env({}).billing_enabled
