"""The inner mail's body renders in a limited child process: time, CPU, memory and size."""

from __future__ import annotations

import signal
import subprocess
import threading
import time

import psutil
import pytest

from worker.domain import mail_render
from worker.domain.errors import DomainError, PermanentError, TransientError
from worker.domain.mail_inner import TemplatingMode, render_body

LIMIT = 0.5
NESTED_LOOPS = (
    "{% set s = 'x' * 1000000 %}{% for a in s %}{% for b in s %}{% endfor %}{% endfor %}done"
)


def sandboxed(body: str, **values: object) -> str:
    return render_body(body, values, mode=TemplatingMode.SANDBOX, timeout=LIMIT)


def test_substitutions_are_rendered_and_escaped() -> None:
    assert sandboxed("Hi {{ name }}, {{ 2 ** 10 }} {{ 'ab' * 2 }}", name="<b>") == (
        "Hi &lt;b&gt;, 1024 abab"
    )


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("{{ ''.__class__.__mro__ }}", "refused by the sandbox"),
        ("{{ (7 ** 30000000) % 10 }}", "powers this large"),
        ("{{ ('x' * 300000000) | length }}", "repeating text"),
        ("{{ '%020000000d' % 0 }}", "%-formatting would be longer than 1000000 characters"),
        ("{{ '%010000000000d' % 0 }}", "%-formatting would be longer than 1000000 characters"),
        ("{{ 'x'|center(20000000) }}", "|center would be longer than 1000000 characters"),
        ("{{ ('x' * 1000000)|wordwrap(1) }}", "|wordwrap would be longer than 1000000"),
        ("{{ missing }}", "is not a valid template"),
        ("{{ 'a' - 1 }}", "failed to render: TypeError"),
        ("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "nest too deeply"),
    ],
)
def test_dangerous_or_broken_bodies_fail_with_the_reason(body: str, reason: str) -> None:
    with pytest.raises(PermanentError, match=reason.replace("|", r"\|")):
        sandboxed(body)


@pytest.mark.parametrize(
    ("body", "mode"),
    [
        (NESTED_LOOPS, TemplatingMode.SANDBOX),
        ("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
         TemplatingMode.SANDBOX),
        ("{{ ('x' * 400000)|wordwrap(1) }}", TemplatingMode.SANDBOX),  # under the cap, but slow
        ("{{ range(10 ** 12)|sum }}", TemplatingMode.UNSAFE),  # one C call: SIGALRM waits
    ],
)  # fmt: skip
def test_a_template_past_its_time_is_stopped_within_the_limit_plus_one_second(
    body: str, mode: TemplatingMode
) -> None:
    started = time.monotonic()

    with pytest.raises(PermanentError, match=f"took longer than {LIMIT} s"):
        render_body(body, {}, mode=mode, timeout=LIMIT)

    assert time.monotonic() - started < LIMIT + 1


def test_a_template_past_its_memory_fails_with_the_reason() -> None:
    with pytest.raises(PermanentError, match="needs more than 256 MiB of memory"):
        render_body("{{ 'x' * 10 ** 9 }}", {}, mode=TemplatingMode.UNSAFE, timeout=LIMIT)


def test_the_renderer_inherits_no_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMTP_PASSWORD", "s3cret")
    body = "{{ cycler.__init__.__globals__.os.environ.get('SMTP_PASSWORD', 'none') }}"

    assert render_body(body, {}, mode=TemplatingMode.UNSAFE, timeout=LIMIT) == "none"


def renderers(exclude: frozenset[int] = frozenset()) -> list[psutil.Process]:
    """This process's rendering children still around, or any zombie child."""
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            zombie = child.status() == psutil.STATUS_ZOMBIE
            if child.pid not in exclude and (zombie or mail_render.__name__ in child.cmdline()):
                found.append(child)
        except psutil.NoSuchProcess:
            continue
    return found


def test_renders_run_side_by_side_and_leave_no_process_behind() -> None:
    others = frozenset(child.pid for child in psutil.Process().children(recursive=True))
    outcomes: dict[int, str] = {}

    def render(index: int) -> None:
        body = NESTED_LOOPS if index % 2 else "plain {{ n }}"
        try:
            outcomes[index] = sandboxed(body, n=index)
        except DomainError as exc:
            outcomes[index] = str(exc)

    threads = [threading.Thread(target=render, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert outcomes == {
        i: f"plain {i}" if i % 2 == 0 else f"mail body took longer than {LIMIT} s to render"
        for i in range(6)
    }
    assert renderers(exclude=others) == []


@pytest.mark.parametrize(
    ("returncode", "error"),
    [
        (-signal.SIGXCPU, PermanentError),
        (-signal.SIGKILL, PermanentError),
        (-signal.SIGTERM, TransientError),
        (1, PermanentError),
    ],
)
def test_a_child_that_died_is_reported(returncode: int, error: type[DomainError]) -> None:
    completed = subprocess.CompletedProcess([], returncode, b"", b"Traceback...\nBoom: x\n")

    with pytest.raises(error):
        mail_render._outcome(completed, mail_render.Limits(seconds=LIMIT))


def test_disabled_mode_sends_the_body_as_given() -> None:
    body = "{{ not rendered }}"

    assert render_body(body, {}, mode=TemplatingMode.DISABLED, timeout=1) == body
