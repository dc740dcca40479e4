"""Rendering the inner mail's body in a child process with hard limits.

A template runs in its own short-lived interpreter (``python -m worker.domain.mail_render``,
about 0.1 s to start), never in a worker thread:

- wall time: the child stops itself ``seconds`` after it starts rendering (``SIGALRM``), and
  the parent kills it ``seconds`` + :data:`STARTUP_ALLOWANCE` after spawning it, whatever it
  is doing;
- CPU time: ``RLIMIT_CPU`` one second past that (``SIGXCPU``, then ``SIGKILL``);
- memory: ``RLIMIT_AS`` of :data:`MEMORY_LIMIT`; a ``MemoryError`` is reported as such;
- output: the sandbox's own cap (``mail_sandbox.MAX_LENGTH``).

The child gets the body and substitutions as JSON on stdin and answers JSON on stdout; it
inherits no environment beyond ``PATH`` and ``PYTHONPATH`` (no secrets), starts in its own
session (a Ctrl-C meant for the worker does not kill it) and is always reaped. Several worker
threads may render at once: each has its own child.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import resource
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

import jinja2
from jinja2.exceptions import SecurityError

from worker.domain import mail_sandbox
from worker.domain.errors import PermanentError, TransientError

logger = logging.getLogger(__name__)

#: Address space of the rendering process, in bytes (an idle one uses about 25 MiB).
MEMORY_LIMIT: Final = 256 * 1024 * 1024
#: Seconds a child may take to start before its own clock runs; the parent kills it at
#: ``seconds`` + this.
STARTUP_ALLOWANCE: Final = 0.75


@dataclass(frozen=True, kw_only=True)
class Limits:
    """What one render may use."""

    #: Wall-clock seconds of rendering (``MAIL_TEMPLATING_TIMEOUT``).
    seconds: float
    #: Bytes of address space.
    memory: int = MEMORY_LIMIT


def render(body: str, substitutions: Mapping[str, Any], *, sandboxed: bool, limits: Limits) -> str:
    """``body`` rendered in a child process within ``limits``.

    Parameters
    ----------
    sandboxed
        Render in ``mail_sandbox.CappedSandbox``; otherwise in a plain jinja2 environment
        (``MAIL_TEMPLATING_MODE=unsafe``), still within the process limits.

    Raises
    ------
    PermanentError
        The template is invalid, refused by the sandbox, or ran past a limit.
    TransientError
        The child could not be started, or was stopped by a signal that was not ours.
    """
    try:
        request = json.dumps({"body": body, "substitutions": dict(substitutions)})
    except (TypeError, ValueError) as exc:
        raise PermanentError(f"mail substitutions are not JSON values: {exc}") from exc
    command = [sys.executable, "-m", __name__, f"--seconds={limits.seconds}"]
    command += [f"--memory={limits.memory}", "--sandboxed" if sandboxed else "--unsafe"]
    try:
        completed = subprocess.run(
            command,
            input=request.encode(),
            capture_output=True,
            timeout=limits.seconds + STARTUP_ALLOWANCE,
            env=_child_environment(),
            start_new_session=True,
            check=False,
        )  # on timeout, run() kills the child and reaps it
    except subprocess.TimeoutExpired:
        raise PermanentError(_too_slow(limits)) from None
    except OSError as exc:
        raise TransientError(f"cannot start the mail body renderer: {exc}") from exc
    return _outcome(completed, limits)


def _child_environment() -> dict[str, str]:
    paths = [os.path.abspath(path) for path in sys.path if path]
    return {"PATH": os.environ.get("PATH", os.defpath), "PYTHONPATH": os.pathsep.join(paths)}


def _too_slow(limits: Limits) -> str:
    return f"mail body took longer than {limits.seconds:g} s to render"


def _outcome(completed: subprocess.CompletedProcess[bytes], limits: Limits) -> str:
    """The rendered body, or the error the child reported or died of."""
    if completed.returncode < 0:
        number = -completed.returncode
        if number in (signal.SIGXCPU, signal.SIGKILL):
            raise PermanentError(
                f"mail body used more than its CPU time ({limits.seconds:g} s) to render "
                f"and was killed"
            )
        raise TransientError(f"the mail body renderer was stopped by signal {number}")
    try:
        reply = json.loads(completed.stdout)
    except ValueError:
        reply = None
    if completed.returncode != 0 or not isinstance(reply, dict):
        lines = completed.stderr.decode(errors="replace").strip().splitlines() or [""]
        logger.warning(
            "mail body renderer exited %s: %s",
            completed.returncode,
            lines[-1][:300],
            extra={"action": "mail_render_crashed", "exit_status": completed.returncode},
        )
        raise PermanentError(
            f"the mail body renderer failed (exit status {completed.returncode}): {lines[-1][:300]}"
        )
    if "html" in reply:
        return str(reply["html"])
    raise PermanentError(_describe(str(reply.get("error")), str(reply.get("message")), limits))


def _describe(error: str, message: str, limits: Limits) -> str:
    reasons = {
        "timeout": _too_slow(limits),
        "memory": f"mail body needs more than {limits.memory // 2**20} MiB of memory to render",
        "sandbox": f"mail body refused by the sandbox: {message}",
        "template": f"mail body is not a valid template: {message}",
    }
    return reasons.get(error, f"mail body failed to render: {message}")


# --- the child ---------------------------------------------------------------------------


class _Deadline(BaseException):
    """The wall-clock limit passed (a BaseException: no ``except Exception`` swallows it)."""


def _on_alarm(signum: int, frame: object) -> None:
    raise _Deadline


@contextlib.contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def _limit_resources(seconds: float, memory: int) -> None:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = math.ceil(usage.ru_utime + usage.ru_stime + seconds) + 1
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _render_here(body: str, substitutions: Mapping[str, Any], *, sandboxed: bool) -> str:
    if sandboxed:
        return mail_sandbox.render(body, substitutions)
    environment = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    return environment.from_string(body).render(**substitutions)


def _reply(request: Mapping[str, Any], *, seconds: float, sandboxed: bool) -> dict[str, str]:
    """What the child answers: ``{"html": ...}`` or ``{"error": kind, "message": ...}``."""
    body, substitutions = request["body"], request["substitutions"]
    try:
        with _deadline(seconds):
            return {"html": _render_here(body, substitutions, sandboxed=sandboxed)}
    except _Deadline:
        return {"error": "timeout", "message": ""}
    except MemoryError:
        return {"error": "memory", "message": ""}
    except SecurityError as exc:
        return {"error": "sandbox", "message": str(exc)}
    except jinja2.TemplateError as exc:
        return {"error": "template", "message": str(exc)}
    except RecursionError:
        return {"error": "failed", "message": "templates nest too deeply"}
    except Exception as exc:  # the process boundary: whatever the template raised is its error
        return {"error": "failed", "message": f"{type(exc).__name__}: {exc}"[:500]}


def main(argv: list[str] | None = None) -> int:
    """The child: limits first, then one request from stdin, one reply on stdout."""
    parser = argparse.ArgumentParser(prog="python -m worker.domain.mail_render")
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--memory", type=int, required=True)
    parser.add_argument("--sandboxed", action="store_true")
    parser.add_argument("--unsafe", dest="sandboxed", action="store_false")
    options = parser.parse_args(argv)
    _limit_resources(options.seconds, options.memory)
    request = json.loads(sys.stdin.buffer.read())
    reply = _reply(request, seconds=options.seconds, sandboxed=options.sandboxed)
    sys.stdout.buffer.write(json.dumps(reply).encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
