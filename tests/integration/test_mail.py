"""Mail tasks through a real SMTP server (aiosmtpd on 127.0.0.1) and real HTTP servers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from pytest_httpserver import HTTPServer

from tests.inprocess import drain as drain_queues
from tests.smtp import SMTPServer
from worker import db, runtime
from worker.app import app
from worker.config import Settings
from worker.domain.models import DeliveryStatus, MailDelivery
from worker.jobs import FAILURE, RETRY, SUCCESS, AsyncResult, admin, secrets
from worker.tasks import mail, mail_enterprise

SENDER = "Dify <no-reply@dify.example>"


def drain() -> None:
    drain_queues(["mail"])


def retry_now() -> None:
    """Make jobs waiting for a retry runnable at once (the policy waits 30 s)."""
    with db.session_scope(new=True) as session:
        session.execute(
            sa.text("UPDATE procrastinate_jobs SET scheduled_at = now() WHERE status = 'todo'")
        )


def deliveries() -> list[MailDelivery]:
    with db.session_scope(new=True) as session:
        return list(session.scalars(sa.select(MailDelivery).order_by(MailDelivery.created_at)))


@pytest.fixture
def smtp() -> Iterator[SMTPServer]:
    with SMTPServer() as server:
        yield server


@pytest.fixture(autouse=True)
def task_layer(database_url: str, smtp: SMTPServer, tmp_path: Path) -> Iterator[None]:
    runtime.setup(
        database_url,
        settings=Settings(
            mail_type="smtp",
            smtp_server="127.0.0.1",
            smtp_port=smtp.port,
            mail_default_send_from=SENDER,
            console_web_url="https://console.dify.example",
            storage_local_path=tmp_path,
        ),
    )
    yield
    runtime.teardown()


@pytest.mark.parametrize(
    ("language", "subject"),
    [("en-US", "Join Dify Workspace Now"), ("zh-Hans", "立即加入 Dify 工作空间")],
)
def test_invite_mail_is_delivered_in_the_recipients_language(
    smtp: SMTPServer, language: str, subject: str
) -> None:
    result = mail.send_invite_member_mail_task.delay(
        language=language,
        to="new.member@example.com",
        token="tok-123456",
        inviter_name="<script>alert(1)</script> Bob",
        workspace_name="Research",
    )

    drain()

    assert result.status == SUCCESS
    (received,) = smtp.received
    assert received.recipients == ["new.member@example.com"]
    assert received.subject == subject
    assert "https://console.dify.example/activate?token=tok-123456" in received.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Bob" in received.html
    assert "<script>alert(1)</script>" not in received.html
    (delivery,) = deliveries()
    assert delivery.status is DeliveryStatus.SENT
    assert delivery.reply == "250 2.0.0 Ok: queued as TEST1"
    assert delivery.language == language


def test_a_4xx_reply_is_retried_then_delivered_once(smtp: SMTPServer) -> None:
    smtp.handler.data_replies.append("451 4.3.0 Mailbox temporarily unavailable")
    result = mail.send_email_code_login_mail_task.delay("en-US", "user@example.com", "654321")

    drain()
    assert result.status == RETRY
    assert deliveries()[0].status is DeliveryStatus.RETRYING
    assert "451 4.3.0 Mailbox temporarily unavailable" in (deliveries()[0].error or "")
    retry_now()
    drain()

    assert result.status == SUCCESS
    assert len(smtp.received) == 1
    (delivery,) = deliveries()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.SENT, 2)


def test_a_5xx_reply_fails_at_once_with_the_reply_recorded(smtp: SMTPServer) -> None:
    smtp.handler.data_replies.append("554 5.7.1 Message rejected as spam")
    result = mail.send_reset_password_mail_task.delay("en-US", "user@example.com", "111111")

    drain()

    assert result.status == FAILURE
    assert "554 5.7.1 Message rejected as spam" in result.info
    (delivery,) = deliveries()
    assert delivery.status is DeliveryStatus.FAILED
    assert "554 5.7.1 Message rejected as spam" in (delivery.error or "")
    assert smtp.received == []


def test_a_stopped_server_is_retried(smtp: SMTPServer) -> None:
    smtp.stop()
    result = mail.send_change_mail_completed_notification_task.delay("en-US", "user@example.com")

    drain()
    assert result.status == RETRY
    assert "Connection refused" in (deliveries()[0].error or "")
    smtp.start()
    retry_now()
    drain()

    assert result.status == SUCCESS
    assert len(smtp.received) == 1


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        ({"to": "victim@example.com\r\nBcc: all@example.com"}, "contains a line break"),
        ({"workspace": "Team\r\nBcc: all@example.com"}, "contains a line break"),
        ({"to": "not-an-address"}, "is not a valid e-mail address"),
    ],
)
def test_header_injection_and_bad_addresses_are_refused_and_nothing_is_sent(
    smtp: SMTPServer, args: dict[str, str], reason: str
) -> None:
    values = {"language": "en-US", "to": "ok@example.com", "workspace": "Team", **args}
    result = mail.send_new_owner_transfer_notify_email_task.delay(**values)

    drain()

    assert result.status == FAILURE
    assert reason in result.info
    assert smtp.received == []


def test_a_redelivered_job_does_not_send_a_recorded_message_again(smtp: SMTPServer) -> None:
    result = mail.send_deletion_success_task.delay("gone@example.com")
    drain()
    assert len(smtp.received) == 1
    # the job runs again after its message was recorded as sent
    with db.session_scope(new=True) as session:
        session.execute(
            sa.text("UPDATE procrastinate_jobs SET status = 'todo' WHERE id = :id"),
            {"id": result.id},
        )
        session.execute(sa.text("DELETE FROM task_results"))

    drain()

    assert len(smtp.received) == 1
    assert result.status == SUCCESS


def test_codes_leave_the_jobs_table_and_the_logs(
    smtp: SMTPServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.handler.addFilter(secrets.RedactSecrets())
    with caplog.at_level(logging.DEBUG):
        result = mail.send_account_deletion_verification_code.delay("user@example.com", "987654")
        drain()

    assert result.status == SUCCESS
    assert "987654" in smtp.received[0].html
    with db.session_scope(new=True) as session:
        args = session.execute(
            sa.text("SELECT args FROM procrastinate_jobs WHERE id = :id"), {"id": result.id}
        ).scalar_one()
    assert args["code"] == "***"
    ours = [
        caplog.handler.format(r)
        for r in caplog.records
        if r.name.startswith(("worker", "procrastinate"))  # not the test SMTP server's own log
    ]
    assert any("mail.account_deletion_verification" in line for line in ours), "job logged"
    assert not [line for line in ours if "987654" in line]


def test_unconfigured_mail_fails_the_job_with_the_reason(database_url: str) -> None:
    runtime.setup(database_url, settings=Settings())
    result = mail.send_change_mail_task.delay("en-US", "user@example.com", "123123", "old_email")

    drain()

    assert result.status == FAILURE
    assert "mail is not configured" in result.info


def test_inner_mail_is_rendered_in_a_sandbox_and_sent_to_each(smtp: SMTPServer) -> None:
    result = mail_enterprise.send_inner_email_task.delay(
        to=["a@example.com", "b@example.com"],
        subject="Quarterly notice",
        body="<p>Hello {{ name }}</p>",
        substitutions={"name": "<Ops>"},
    )

    drain()

    assert result.status == SUCCESS
    assert sorted(r.recipients[0] for r in smtp.received) == ["a@example.com", "b@example.com"]
    assert "Hello &lt;Ops&gt;" in smtp.received[0].html


def test_inner_mail_with_an_unsafe_template_fails(smtp: SMTPServer) -> None:
    result = mail_enterprise.send_inner_email_task.delay(
        to=["a@example.com"], subject="x", body="{{ ''.__class__ }}", substitutions={}
    )

    drain()

    assert result.status == FAILURE
    assert "refused by the sandbox" in result.info
    assert smtp.received == []


@pytest.mark.parametrize(
    ("mail_type", "path", "reply", "message_id"),
    [
        ("resend", "/emails", {"json": {"id": "re_123"}}, "re_123"),
        ("sendgrid", "/v3/mail/send", {"status": 202, "headers": {"X-Message-Id": "sg-9"}}, "sg-9"),
    ],
)
def test_http_backends_deliver(
    httpserver: HTTPServer,
    database_url: str,
    mail_type: str,
    path: str,
    reply: dict[str, object],
    message_id: str,
) -> None:
    key = {
        "resend": {"resend_api_key": "k", "resend_api_url": httpserver.url_for("/")},
        "sendgrid": {"sendgrid_api_key": "k", "sendgrid_api_url": httpserver.url_for("/")},
    }
    runtime.setup(database_url, settings=Settings(
        mail_type=mail_type, mail_default_send_from="no-reply@dify.example", **key[mail_type]
    ))  # fmt: skip
    if "json" in reply:
        httpserver.expect_request(path, method="POST").respond_with_json(reply["json"])
    else:
        httpserver.expect_request(path, method="POST").respond_with_data(
            "", status=202, headers={"X-Message-Id": "sg-9"}
        )
    result = mail.send_email_code_login_mail_task.delay("en-US", "user@example.com", "222333")

    drain()

    assert result.status == SUCCESS, result.info
    ((request, _),) = httpserver.log
    assert request.headers["Authorization"] == "Bearer k"
    assert "222333" in request.get_data(as_text=True)
    assert deliveries()[0].provider_message_id == message_id


@pytest.mark.parametrize(("status", "expected"), [(503, RETRY), (422, FAILURE)])
def test_http_backend_errors_retry_or_fail(
    httpserver: HTTPServer, database_url: str, status: int, expected: str
) -> None:
    runtime.setup(database_url, settings=Settings(
        mail_type="resend", mail_default_send_from="no-reply@dify.example",
        resend_api_key="k", resend_api_url=httpserver.url_for("/"),
    ))  # fmt: skip
    httpserver.expect_request("/emails").respond_with_json(
        {"message": "validation failed"}, status=status
    )
    result = mail.send_email_code_login_mail_task.delay("en-US", "user@example.com", "222333")

    drain()

    assert result.status == expected
    assert str(status) in (deliveries()[0].error or "")


def test_result_handle_reports_a_sent_mail(smtp: SMTPServer) -> None:
    result = mail.send_new_owner_transfer_notify_email_task.delay("zh-CN", "o@example.com", "T")
    drain()
    assert AsyncResult(result.id).get(timeout=1)["status"] == "sent"


def test_retries_exhausted_end_failed_with_the_reason(smtp: SMTPServer) -> None:
    smtp.stop()
    result = mail.send_change_mail_completed_notification_task.delay("en-US", "user@example.com")

    for _ in range(mail.MAIL_RETRY.max_retries + 1):
        drain()
        retry_now()

    assert result.status == FAILURE
    (delivery,) = deliveries()
    assert delivery.status is DeliveryStatus.FAILED
    assert delivery.attempts == mail.MAIL_RETRY.max_retries + 1
    assert "Connection refused" in (delivery.error or "")


def test_white_label_mails_carry_the_configured_title(
    smtp: SMTPServer, database_url: str, tmp_path: Path
) -> None:
    runtime.setup(database_url, settings=Settings(
        mail_type="smtp", smtp_server="127.0.0.1", smtp_port=smtp.port,
        mail_default_send_from=SENDER, mail_brand_title="Acme AI", storage_local_path=tmp_path,
    ))  # fmt: skip
    mail.send_email_code_login_mail_task.delay("en-US", "user@example.com", "445566")

    drain()

    (received,) = smtp.received
    assert "Acme AI" in received.subject
    assert "dify" not in (received.subject + received.html).lower().replace("dify.example", "")


def test_inner_mail_does_not_resend_to_recipients_already_served(smtp: SMTPServer) -> None:
    accept = smtp.handler.handle_DATA
    refusals = {"b@example.com": 1}

    async def handle(server: object, session: object, envelope: Any) -> str:
        if refusals.get(envelope.rcpt_tos[0]):
            refusals[envelope.rcpt_tos[0]] -= 1
            return "451 4.3.0 try later"
        return await accept(server, session, envelope)

    smtp.handler.handle_DATA = handle  # type: ignore[method-assign]
    result = mail_enterprise.send_inner_email_task.delay(
        to=["a@example.com", "b@example.com"], subject="S", body="hi", substitutions={}
    )

    drain()
    retry_now()
    drain()

    assert result.status == SUCCESS
    assert sorted(r.recipients[0] for r in smtp.received) == ["a@example.com", "b@example.com"]


def test_a_failed_job_whose_code_was_erased_cannot_be_retried(smtp: SMTPServer) -> None:
    smtp.handler.data_replies.append("550 5.7.1 rejected")
    result = mail.send_reset_password_mail_task.delay("en-US", "u@example.com", "123456")
    drain()
    assert result.status == FAILURE

    with pytest.raises(admin.JobCommandError, match="secret argument"), db.session_scope() as s:
        admin.retry_job(s, result.id)
