"""The enterprise inner mail's body: templated in a jinja2 sandbox with a wall-clock limit.

Dify's ``MAIL_TEMPLATING_MODE``: ``sandbox`` (default) renders in an immutable sandbox that
stops after ``MAIL_TEMPLATING_TIMEOUT`` seconds, ``unsafe`` renders with a plain environment,
``disabled`` sends the body as given.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Mapping
from typing import Any

import jinja2
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from worker.domain.errors import PermanentError


class TemplatingMode(enum.StrEnum):
    """How the inner mail's body is templated."""

    #: Immutable jinja2 sandbox with a wall-clock limit.
    SANDBOX = "sandbox"
    #: Plain jinja2 (trusted bodies only).
    UNSAFE = "unsafe"
    #: No templating: the body is sent as given.
    DISABLED = "disabled"


#: Longest text or list a template may build with ``*``.
MAX_REPEATED_LENGTH = 1_000_000
#: Largest integer (in bits) a template may build with ``**``.
MAX_RESULT_BITS = 100_000


def _bits(value: int | float) -> int:
    return value.bit_length() if isinstance(value, int) else 64


class _Deadline(Exception):
    """Internal: rendering ran past its wall-clock limit."""


class _TimedSandbox(ImmutableSandboxedEnvironment):
    """A sandbox that checks the clock on every call, attribute and item lookup and output.

    Loops go through ``range`` (a call, capped by the sandbox at 100,000 items) or through
    values that are output or looked up, so the clock is read often enough.
    """

    deadline = float("inf")
    #: ``*`` and ``**`` can build huge numbers or strings in one step, between two clock reads.
    intercepted_binops = frozenset({"*", "**"})

    def __init__(self, **options: Any) -> None:
        super().__init__(finalize=self._finalize, **options)

    def _finalize(self, value: Any) -> Any:
        self._check()
        return value

    def _check(self) -> None:
        if time.monotonic() > self.deadline:
            raise _Deadline

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        self._check()
        if operator == "**":
            numbers = all(isinstance(v, int | float) for v in (left, right))
            if not numbers or abs(right) > 100 or _bits(left) * abs(right) > MAX_RESULT_BITS:
                raise SecurityError("powers this large are not allowed in mail templates")
            return left**right
        sizes = [len(v) for v in (left, right) if isinstance(v, str | list | tuple)]
        counts = [abs(v) for v in (left, right) if isinstance(v, int)]
        if sizes and counts and sizes[0] * counts[0] > MAX_REPEATED_LENGTH:
            raise SecurityError(
                f"repeating text beyond {MAX_REPEATED_LENGTH} characters is not allowed"
            )
        return super().call_binop(context, operator, left, right)

    def call(self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        self._check()
        return super().call(__context, __obj, *args, **kwargs)

    def getattr(self, obj: Any, attribute: str) -> Any:
        self._check()
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        self._check()
        return super().getitem(obj, argument)


def render_body(
    body: str, substitutions: Mapping[str, Any], *, mode: TemplatingMode, timeout: float
) -> str:
    """The body with ``substitutions`` applied per ``mode``.

    Raises
    ------
    PermanentError
        A syntax error, an undefined variable, a sandbox violation or the time limit.
    """
    if mode is TemplatingMode.DISABLED:
        return body
    try:
        if mode is TemplatingMode.UNSAFE:
            environment = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
            return environment.from_string(body).render(**substitutions)
        sandbox = _TimedSandbox(autoescape=True, undefined=jinja2.StrictUndefined)
        template = sandbox.from_string(body)
        sandbox.deadline = time.monotonic() + timeout
        return template.render(**substitutions)
    except _Deadline:
        raise PermanentError(f"mail body took longer than {timeout} s to render") from None
    except SecurityError as exc:
        raise PermanentError(f"mail body refused by the sandbox: {exc}") from exc
    except jinja2.TemplateError as exc:
        raise PermanentError(f"mail body is not a valid template: {exc}") from exc
