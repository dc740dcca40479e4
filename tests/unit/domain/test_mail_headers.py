"""Header values: line breaks refused however they are spelled, addresses within RFC 5321."""

from __future__ import annotations

import random
from email import policy
from email.parser import BytesParser

import pytest

from worker.domain.errors import PermanentError
from worker.domain.mail_headers import (
    address_problem,
    check_address,
    problem,
    sender_problem,
    serialize,
)
from worker.domain.mailer import Message, build

SENDER = "Dify <no-reply@dify.example>"
HEADERS = ["From", "To", "Subject", "Message-ID", "Content-Type", "Content-Transfer-Encoding"]
#: Each way of hiding a line break from a check that only looks for a literal CR/LF.
INJECTIONS = [
    "Lab =?utf-8?q?x=0D=0ABcc:_evil@attacker.test?=",
    "Lab =?utf-8?b?eA0KQmNjOiBldmlsQGF0dGFja2VyLnRlc3Q=?=",
    "Lab =?utf-8?q?x=0ABcc:_evil@attacker.test?=",
    "Lab =?utf-8?q?x=0D=0A=0D=0A?=",
    "Lab =?utf-8?b?eA0KQmNj?=",  # base64 without padding: the library still decodes it
    "Lab =?x-unknown?q?x=0ABcc:_e@a.test?=",  # unknown charset: decoded as ASCII
    "Lab =?utf-8?q?x=C2=85Bcc:_e@a.test?=",  # NEL
    "Lab =?utf-8?q?x=E2=80=A8Bcc:_e@a.test?=",  # LINE SEPARATOR
    "Lab =?utf-16?b?AAoAQQ==?=",
    '"=?utf-8?q?x=0D=0A?="',
    "Lab\x0bBcc: e@a.test",
    "Lab\x85Bcc: e@a.test",
    "Lab\rBcc: e@a.test",
]


def message(**overrides: str) -> Message:
    values = {"sender": SENDER, "to": "v@x.test", "subject": "Hi", "html": "<p>x</p>"}
    return Message(**{**values, **overrides})


@pytest.mark.parametrize("value", INJECTIONS)
def test_line_breaks_are_found_literal_or_encoded(value: str) -> None:
    assert problem(value) is not None
    with pytest.raises(PermanentError, match="refusing to send"):
        build(message(subject=value))
    with pytest.raises(PermanentError, match="refusing to send"):
        build(message(sender=f"{value} <no-reply@dify.example>"))


@pytest.mark.parametrize(
    "subject",
    [
        "Quarterly notice",
        "  leading and   inner   blanks  ",
        "Café =?utf-8?q?Caf=C3=A9?= 漢字 \U0001f600",
        "立即加入 Dify 工作空间" * 12,
        "word " * 80,
        "a=?b?c=?d ?= ==?",
    ],
)
def test_ordinary_subjects_arrive_with_exactly_our_headers(subject: str) -> None:
    data = serialize(build(message(subject=subject)))

    parsed = BytesParser(policy=policy.default).parsebytes(data)
    assert list(parsed.keys()) == [*HEADERS, "MIME-Version"]
    assert str(parsed["To"]) == "v@x.test"
    assert str(parsed["From"]) == SENDER
    assert "\n" not in str(parsed["Subject"])


def test_random_subjects_never_add_a_header() -> None:
    pieces = [*"ab XY=?_:;,\"'<>()@.\t", "é", "漢", "=?utf-8?q?", "=?utf-8?b?", "?=", "=0D",
              "=0A", "DQo=", "Cg==", "=C2=85", "=E2=80=A8", "?q?", "?b?", "\\"]  # fmt: skip
    rng = random.Random(18)
    for _ in range(500):
        subject = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 40)))
        try:
            data = serialize(build(message(subject=subject)))
        except PermanentError:
            continue
        parsed = BytesParser(policy=policy.default).parsebytes(data)
        assert list(parsed.keys()) == [*HEADERS, "MIME-Version"], subject
        assert not {"\r", "\n"} & set(str(parsed["Subject"])), subject


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("a" * 300 + "@example.com", "longer than 254 characters"),
        ("a" * 65 + "@example.com", "more than 64 characters before the @"),
        ("a@" + "b" * 250 + ".com", "longer than 254 characters"),
        ("=?utf-8?q?x?=@example.com", "encoded word"),
        ("a@=?utf-8?q?x=0A?=.com", "encoded word"),
        ("Foo <a@example.com>", "not a valid e-mail address"),
        ("a@b", "not a valid e-mail address"),
    ],
)
def test_addresses_are_refused_with_the_reason(address: str, reason: str) -> None:
    assert reason in (address_problem(address) or "")
    with pytest.raises(PermanentError, match=reason) as caught:
        check_address(address)
    assert len(str(caught.value)) < 200


def test_the_longest_addresses_rfc_5321_allows_pass() -> None:
    local = "a" * 64
    domain = ".".join(["b" * 60] * 3) + ".com"  # 187 octets: 64 + 1 + 187 = 252
    assert check_address(f" {local}@{domain} ") == f"{local}@{domain}"


@pytest.mark.parametrize(
    ("sender", "ok"),
    [
        (SENDER, True),
        ("no-reply@dify.example", True),
        ('"Acme, Inc." <no-reply@acme.example>', True),
        ("Ünïcode Name <a@b.example>", True),
        ("=?utf-8?q?Evil=0D=0ABcc:_x@y.test?= <no-reply@dify.example>", False),
        ("a@b.example, c@d.example", False),
        ("Dify <a@b.example> trailing", False),
    ],
)
def test_senders_are_one_address_with_a_safe_name(sender: str, ok: bool) -> None:
    assert (sender_problem(sender) is None) is ok
