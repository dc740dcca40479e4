"""SMTPMailer against real TLS servers: STARTTLS with authentication, and implicit TLS."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from typing import Any

import pytest
import trustme
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.smtp import SMTPServer
from worker.domain.errors import PermanentError
from worker.domain.mailer import Message, SMTPMailer

MESSAGE = Message(
    sender="Dify <no-reply@dify.example>", to="user@example.com", subject="Hi", html="<p>x</p>"
)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def contexts(ca: trustme.CA) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return server, client


def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, auth: Any) -> Any:
    ok = isinstance(auth, LoginPassword) and (auth.login, auth.password) == (b"mailer", b"s3cret")
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def starttls_server(contexts: tuple[ssl.SSLContext, ssl.SSLContext]) -> Iterator[SMTPServer]:
    with SMTPServer(
        tls_context=contexts[0],
        require_starttls=True,
        authenticator=authenticate,
        auth_required=True,
    ) as server:
        yield server


def test_starttls_with_login_delivers(
    starttls_server: SMTPServer, contexts: tuple[ssl.SSLContext, ssl.SSLContext]
) -> None:
    mailer = SMTPMailer(
        "127.0.0.1", starttls_server.port, username="mailer", password="s3cret",
        use_tls=True, opportunistic_tls=True, ssl_context=contexts[1],
    )  # fmt: skip

    receipt = mailer.send(MESSAGE)

    assert receipt.reply is not None and receipt.reply.startswith("250")
    assert starttls_server.received[0].recipients == ["user@example.com"]


def test_wrong_password_fails_permanently(
    starttls_server: SMTPServer, contexts: tuple[ssl.SSLContext, ssl.SSLContext]
) -> None:
    mailer = SMTPMailer(
        "127.0.0.1", starttls_server.port, username="mailer", password="wrong",
        use_tls=True, opportunistic_tls=True, ssl_context=contexts[1],
    )  # fmt: skip

    with pytest.raises(PermanentError, match="535"):
        mailer.send(MESSAGE)
    assert starttls_server.received == []


def test_plain_connection_is_refused_by_a_server_requiring_starttls(
    starttls_server: SMTPServer,
) -> None:
    with pytest.raises(PermanentError, match="530"):
        SMTPMailer("127.0.0.1", starttls_server.port).send(MESSAGE)


def test_implicit_tls_delivers(contexts: tuple[ssl.SSLContext, ssl.SSLContext]) -> None:
    with SMTPServer(ssl_context=contexts[0]) as server:
        mailer = SMTPMailer("127.0.0.1", server.port, use_tls=True, ssl_context=contexts[1])

        receipt = mailer.send(MESSAGE)

    assert receipt.reply is not None and receipt.reply.startswith("250")
    assert len(server.received) == 1
