"""Secret task arguments (verification codes, invite tokens): out of logs, out of the jobs table.

A task declares ``secret_args=("code",)``. procrastinate needs the value in ``procrastinate_jobs``
while the job may still run; once the job has ended in any way (succeeded, failed, aborted,
cancelled) the value is replaced by ``***`` by the statement that ends it (``worker.jobs.state``);
commands that show a waiting job mask it. Log records about the job
(procrastinate's "Starting job ...(code='123456')" lines) go through :class:`RedactSecrets`,
which ``manage.py`` installs on its log handler.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any

#: What replaces a secret value.
MASK = "***"

_lock = threading.Lock()
_secret_args: dict[str, frozenset[str]] = {}


def register(task_name: str, names: Iterable[str]) -> None:
    """Remember that ``task_name``'s arguments ``names`` are secret."""
    with _lock:
        _secret_args[task_name] = frozenset(names)


def names_for(task_name: str) -> frozenset[str]:
    """The secret argument names of ``task_name`` (empty for most tasks)."""
    return _secret_args.get(task_name, frozenset())


def all_secret_args() -> dict[str, frozenset[str]]:
    """Every task's secret argument names, by task name."""
    with _lock:
        return dict(_secret_args)


def masked_args(task_name: str, args: Mapping[str, Any]) -> dict[str, Any]:
    """``args`` with the task's secret values replaced by ``***`` (for display)."""
    names = names_for(task_name)
    return {key: MASK if key in names else value for key, value in args.items()}


def _secret_values(job: Mapping[str, Any]) -> list[str]:
    kwargs = job.get("task_kwargs") or {}
    names = names_for(str(job.get("task_name", "")))
    return [str(kwargs[name]) for name in names if kwargs.get(name) not in (None, "", MASK)]


def _keyword_pattern() -> re.Pattern[str] | None:
    """``name='value'`` for every registered secret name, as in procrastinate's call strings."""
    with _lock:
        names = sorted(set().union(*_secret_args.values())) if _secret_args else []
    if not names:
        return None
    alternatives = "|".join(re.escape(name) for name in names)
    return re.compile(rf"\b({alternatives})=('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")")


#: Longest log message kept whole, in characters; the rest is cut (a 2 MB argument must not
#: make 2 MB of log).
MAX_LOG_MESSAGE = 4000
#: Longest ``repr`` of one argument, or of one ``extra`` field, kept whole in a log record.
MAX_LOGGED_VALUE = 500


def shortened(text: str, limit: int = MAX_LOG_MESSAGE) -> str:
    """``text``, cut to ``limit`` characters with a note of how much was cut."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit} more characters)"


def _short_value(value: Any) -> Any:
    if isinstance(value, str | int | float | bool) and len(str(value)) <= MAX_LOGGED_VALUE:
        return value
    if value is None:
        return value
    text = repr(value)
    return value if len(text) <= MAX_LOGGED_VALUE else shortened(text, MAX_LOGGED_VALUE)


def _masked_job(job: Mapping[str, Any]) -> dict[str, Any]:
    """A job's log context with its secret arguments masked and long arguments shortened."""
    names = names_for(str(job.get("task_name", "")))
    kwargs = {
        key: MASK if key in names and value is not None else _short_value(value)
        for key, value in dict(job.get("task_kwargs") or {}).items()
    }
    masked = {**job, "task_kwargs": kwargs}
    if "call_string" in job:
        arguments = ", ".join(f"{key}={value!r}" for key, value in kwargs.items())
        masked["call_string"] = f"{job.get('task_name')}[{job.get('id')}]({arguments})"
    return masked


class RedactSecrets(logging.Filter):
    """Masks secret task arguments in every log record, and shortens long ones.

    The secrets of the job (``job`` extra) or jobs (``jobs`` extra: procrastinate's "About to
    defer" and "Deferred" lines) a record is about are masked in its message and extras; a
    record with neither (procrastinate's "Waiting for job to finish: ...(code='...')" at
    shutdown) still has any ``<secret name>='...'`` in its message masked. Messages longer than
    :data:`MAX_LOG_MESSAGE` and extras or arguments longer than :data:`MAX_LOGGED_VALUE` are cut.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        about = self._jobs_of(record)
        message = record.getMessage()
        masked = message
        for context in about:
            for secret in _secret_values(context):
                masked = masked.replace(secret, MASK)
        pattern = _keyword_pattern() if record.name.startswith("procrastinate") else None
        if pattern is not None:
            masked = pattern.sub(lambda m: f"{m.group(1)}='{MASK}'", masked)
        masked = shortened(masked)
        if masked != message:
            record.msg, record.args = masked, ()
        job, jobs = getattr(record, "job", None), getattr(record, "jobs", None)
        if isinstance(job, Mapping):
            record.job = _masked_job(job)
        if isinstance(jobs, list):
            record.jobs = [_masked_job(j) if isinstance(j, Mapping) else j for j in jobs]
        self._shorten_extras(record)
        return True

    @staticmethod
    def _jobs_of(record: logging.LogRecord) -> list[Mapping[str, Any]]:
        job = getattr(record, "job", None)
        jobs = getattr(record, "jobs", None)
        about = [job] if isinstance(job, Mapping) else []
        if isinstance(jobs, list):
            about.extend(j for j in jobs if isinstance(j, Mapping))
        return about

    @staticmethod
    def _shorten_extras(record: logging.LogRecord) -> None:
        for key, value in vars(record).items():
            if key in _STANDARD_ATTRS or key in ("job", "jobs"):
                continue
            short = _short_value(value)
            if short is not value:
                setattr(record, key, short)


#: Attributes every LogRecord has; anything else came through ``extra=``.
_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}
