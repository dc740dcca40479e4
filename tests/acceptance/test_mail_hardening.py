"""Issue 18 through a real ``manage.py worker --queues mail`` and an SMTP server that requires
STARTTLS and a login: header injection through encoded words, runaway inner-mail templates,
over-long recipients, and settings that could inject refused at start-up."""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import trustme
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.acceptance.workers import WorkerProcess, wait_until
from tests.conftest import REPO_ROOT
from tests.smtp import SMTPServer
from worker import db, runtime
from worker.domain.models import MailDelivery
from worker.jobs import FAILURE, SUCCESS, AsyncResult, admin
from worker.tasks import mail, mail_enterprise

pytestmark = pytest.mark.slow

SENDER = "Dify <no-reply@dify.example>"
#: MAIL_TEMPLATING_TIMEOUT of the worker under test, in seconds.
LIMIT = 1.0
#: The header lines every mail we send has, in order, and nothing else.
HEADERS = [
    "From", "To", "Subject", "Message-ID", "Content-Type", "Content-Transfer-Encoding",
    "MIME-Version",
]  # fmt: skip
#: The issue's payloads: each hides a line break from a check for a literal CR/LF.
INJECTIONS = {
    "q CRLF": "Lab =?utf-8?q?x=0D=0ABcc:_evil@attacker.test?=",
    "b CRLF": "Lab =?utf-8?b?eA0KQmNjOiBldmlsQGF0dGFja2VyLnRlc3Q=?=",
    "q LF": "Lab =?utf-8?q?x=0ABcc:_evil@attacker.test?=",
    "b LF": "Lab =?utf-8?b?eApCY2M6IGV2aWxAYXR0YWNrZXIudGVzdA==?=",
    "q end of headers": "Lab =?utf-8?q?x=0D=0A=0D=0A?=",
    "b end of headers": "Lab =?utf-8?b?eA0KDQpYLUluamVjdGVkOiAx?=",
}
ENCODED_LINE_BREAK = "RFC 2047 encoded word that decodes to a line break"


def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, auth: Any) -> Any:
    ok = isinstance(auth, LoginPassword) and (auth.login, auth.password) == (b"mailer", b"s3cret")
    return AuthResult(success=ok, handled=False)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def smtp(ca: trustme.CA) -> Iterator[SMTPServer]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    with SMTPServer(
        tls_context=context, require_starttls=True, authenticator=authenticate, auth_required=True
    ) as server:
        yield server


@pytest.fixture
def mail_env(smtp: SMTPServer, ca: trustme.CA, tmp_path: Path) -> dict[str, str]:
    """The worker's mail settings: STARTTLS with login, trusting the test CA."""
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return {
        "MAIL_TYPE": "smtp",
        "SMTP_SERVER": "127.0.0.1",
        "SMTP_PORT": str(smtp.port),
        "SMTP_USERNAME": "mailer",
        "SMTP_PASSWORD": "s3cret",
        "SMTP_USE_TLS": "true",
        "SMTP_OPPORTUNISTIC_TLS": "true",
        "MAIL_DEFAULT_SEND_FROM": SENDER,
        "MAIL_TEMPLATING_TIMEOUT": str(LIMIT),
        "WORKER_CONCURRENCY": "mail=2",
        "SSL_CERT_FILE": str(ca_file),
    }


@pytest.fixture
def worker(database_url: str, mail_env: dict[str, str]) -> Iterator[WorkerProcess]:
    runtime.setup(database_url)
    process = WorkerProcess(database_url, "--queues", "mail", env=mail_env)
    yield process
    process.close()
    runtime.teardown()


def finished(*results: AsyncResult, timeout: float = 60) -> None:
    wait_until(
        lambda: all(r.status in (SUCCESS, FAILURE) for r in results),
        timeout=timeout,
        message="mail jobs did not finish",
    )


def delivery_count() -> int:
    with db.session_scope(new=True) as session:
        return session.scalar(sa.select(sa.func.count()).select_from(MailDelivery)) or 0


def run_seconds(result: AsyncResult) -> float:
    with db.session_scope(new=True) as session:
        duration = admin.show_job(session, int(result.id))["duration"]
    assert duration is not None
    return float(duration)


def test_encoded_line_breaks_fail_and_only_the_intended_headers_arrive(
    worker: WorkerProcess, smtp: SMTPServer
) -> None:
    refused = [
        *(
            mail.send_new_owner_transfer_notify_email_task.delay("en-US", "v@x.test", payload)
            for payload in INJECTIONS.values()
        ),
        *(
            mail_enterprise.send_inner_email_task.delay(
                to=["v@x.test"], subject=payload, body="<p>hi</p>", substitutions={}
            )
            for payload in INJECTIONS.values()
        ),
        mail.send_email_code_login_mail_task.delay(
            "en-US", "=?utf-8?q?v=0D=0ABcc:_evil@attacker.test?=@x.test", "123456"
        ),
    ]
    workspace = "Lab 研究室 " + "with a long name " * 8
    sent = mail.send_new_owner_transfer_notify_email_task.delay("en-US", "owner@x.test", workspace)

    finished(sent, *refused)

    for result in refused:
        assert result.status == FAILURE
        assert ENCODED_LINE_BREAK in result.info or "encoded word" in result.info
    assert sent.status == SUCCESS, sent.info
    (received,) = smtp.received
    assert received.recipients == ["owner@x.test"]
    assert received.message.keys() == HEADERS
    assert received.message["From"] == SENDER
    assert received.message["To"] == "owner@x.test"
    assert received.subject == f"You are now the owner of {workspace.strip()}"
    assert delivery_count() == 1, "refused mails wrote no delivery row"


def test_runaway_templates_are_killed_at_the_limit_while_other_mails_flow(
    worker: WorkerProcess, smtp: SMTPServer
) -> None:
    def inner(body: str, to: str = "ops@x.test") -> AsyncResult:
        return mail_enterprise.send_inner_email_task.delay(
            to=[to], subject="Notice", body=body, substitutions={}
        )

    nested = "{% set s = 'x' * 1000000 %}{% for a in s %}{% for b in s %}{% endfor %}{% endfor %}"
    slow = [inner(nested + "done"), inner(nested + "again")]
    wrap = inner("{{ ('x' * 1000000)|wordwrap(1) }}")
    huge = [
        inner("{{ '%020000000d' % 0 }}"),
        inner("{{ 'x'|center(20000000) }}"),
        inner("{{ '%010000000000d' % 0 }}"),
    ]
    plain = inner("<p>plain {{ 'mail' }}</p>", to="plain@x.test")

    finished(*slow, wrap, *huge, plain)

    for result in slow:
        assert result.status == FAILURE
        assert f"mail body took longer than {LIMIT:g} s to render" in result.info
        assert run_seconds(result) < LIMIT + 1
    assert wrap.status == FAILURE
    assert "|wordwrap would be longer than 1000000 characters" in wrap.info
    assert run_seconds(wrap) < LIMIT + 1
    for result in huge:
        assert result.status == FAILURE
        assert "refused by the sandbox" in result.info
        assert "would be longer than 1000000 characters" in result.info
    assert plain.status == SUCCESS, plain.info
    (received,) = smtp.received
    assert received.recipients == ["plain@x.test"]
    assert "plain mail" in received.html


def test_a_300_character_recipient_fails_with_a_clear_reason_and_no_sql(
    worker: WorkerProcess, smtp: SMTPServer
) -> None:
    result = mail.send_email_code_login_mail_task.delay("en-US", "a" * 300 + "@x.test", "123456")

    finished(result)

    assert result.status == FAILURE
    assert "is longer than 254 characters (RFC 5321)" in result.info
    assert not any(word in result.info for word in ("INSERT", "SQL", "psycopg", "mail_deliveries"))
    assert len(result.info) < 300
    assert delivery_count() == 0
    assert smtp.received == []


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("WORKER_MAIL_BRAND_TITLE", INJECTIONS["q CRLF"]),
        ("WORKER_MAIL_BRAND_TITLE", INJECTIONS["b CRLF"]),
        ("WORKER_MAIL_BRAND_TITLE", INJECTIONS["q LF"]),
        ("MAIL_DEFAULT_SEND_FROM", f"{INJECTIONS['b end of headers']} <no-reply@dify.example>"),
    ],
)
def test_a_setting_that_could_inject_stops_the_worker_at_start_up(
    database_url: str, mail_env: dict[str, str], setting: str, value: str
) -> None:
    completed = subprocess.run(
        [sys.executable, str(REPO_ROOT / "manage.py"), "worker", "--queues", "mail"],
        env={**os.environ, "DATABASE_URL": database_url, **mail_env, setting: value},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert completed.returncode == 2
    (line,) = completed.stderr.strip().splitlines()
    assert f"{setting}: " in line
    assert "encoded word that decodes to a line break" in line
