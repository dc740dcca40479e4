from __future__ import annotations

import time

import pytest

from worker.domain.errors import PermanentError
from worker.domain.mail_inner import TemplatingMode, render_body


def sandboxed(body: str, **values: object) -> str:
    return render_body(body, values, mode=TemplatingMode.SANDBOX, timeout=0.5)


def test_substitutions_are_rendered_and_escaped() -> None:
    assert sandboxed("Hi {{ name }}, {{ 2 ** 10 }} {{ 'ab' * 2 }}", name="<b>") == (
        "Hi &lt;b&gt;, 1024 abab"
    )


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("{{ ''.__class__.__mro__ }}", "refused by the sandbox"),
        ("{{ (7 ** 30000000) % 10 }}", "powers this large"),
        ("{{ ((10 ** 100) ** 100) ** 100 }}", "powers this large"),
        ("{{ ('x' * 300000000) | length }}", "repeating text"),
        (
            "{% for i in range(100000) %}{% for j in range(100000) %}{{ i }}"
            "{% endfor %}{% endfor %}",
            "took longer than 0.5 s",
        ),
        ("{{ missing }}", "is not a valid template"),
    ],
)
def test_dangerous_or_broken_bodies_fail_quickly(body: str, reason: str) -> None:
    started = time.monotonic()

    with pytest.raises(PermanentError, match=reason):
        sandboxed(body)

    assert time.monotonic() - started < 5


def test_disabled_mode_sends_the_body_as_given() -> None:
    body = "{{ not rendered }}"

    assert render_body(body, {}, mode=TemplatingMode.DISABLED, timeout=1) == body
