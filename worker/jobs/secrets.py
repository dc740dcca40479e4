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


class RedactSecrets(logging.Filter):
    """Masks the secret arguments of the job a log record is about, in its message and extras.

    A record with no ``job`` extra (procrastinate's "Waiting for job to finish: ...(code='...')"
    at shutdown) still has any ``<secret name>='...'`` in its message masked.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        job = getattr(record, "job", None)
        if not isinstance(job, Mapping):
            pattern = _keyword_pattern()
            if pattern is not None and record.name.startswith("procrastinate"):
                message = record.getMessage()
                masked = pattern.sub(lambda m: f"{m.group(1)}='{MASK}'", message)
                if masked != message:
                    record.msg, record.args = masked, ()
            return True
        secrets = _secret_values(job)
        if not secrets:
            return True
        message = record.getMessage()
        for secret in secrets:
            message = message.replace(secret, MASK)
        record.msg, record.args = message, ()
        kwargs = dict(job.get("task_kwargs") or {})
        for name in names_for(str(job.get("task_name", ""))):
            if name in kwargs:
                kwargs[name] = MASK
        record.job = {**job, "task_kwargs": kwargs, "call_string": MASK}
        return True
