"""The enterprise inner mail's body: templated in a separate process with hard limits.

Dify's ``MAIL_TEMPLATING_MODE``: ``sandbox`` (default) renders in an immutable jinja2 sandbox
that caps every text it builds (``mail_sandbox``), ``unsafe`` renders with a plain environment,
``disabled`` sends the body as given. Both templated modes run in a child process
(``mail_render``) limited to ``MAIL_TEMPLATING_TIMEOUT`` seconds of wall and CPU time and
256 MiB of memory, so that no template can hold a worker thread or the host.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

from worker.domain import mail_render


class TemplatingMode(enum.StrEnum):
    """How the inner mail's body is templated."""

    #: Immutable jinja2 sandbox, every text capped, in a limited child process.
    SANDBOX = "sandbox"
    #: Plain jinja2 (trusted bodies only), in the same limited child process.
    UNSAFE = "unsafe"
    #: No templating: the body is sent as given.
    DISABLED = "disabled"


def render_body(
    body: str, substitutions: Mapping[str, Any], *, mode: TemplatingMode, timeout: float
) -> str:
    """The body with ``substitutions`` applied per ``mode``.

    Raises
    ------
    PermanentError
        A syntax error, an undefined variable, a sandbox violation (including a text over the
        cap), or the time, CPU or memory limit.
    TransientError
        The rendering process could not be started.
    """
    if mode is TemplatingMode.DISABLED:
        return body
    return mail_render.render(
        body,
        substitutions,
        sandboxed=mode is TemplatingMode.SANDBOX,
        limits=mail_render.Limits(seconds=timeout),
    )
