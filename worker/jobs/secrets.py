"""Secret task arguments (verification codes, invite tokens): out of logs, out of the jobs table.

A task declares ``secret_args=("code",)``. procrastinate needs the value in ``procrastinate_jobs``
while the job may still run; once the job has ended (succeeded, or failed for good) the value is
replaced by ``***`` in the same transaction as the job's outcome. Log records about the job
(procrastinate's "Starting job ...(code='123456')" lines) go through :class:`RedactSecrets`,
which ``manage.py`` installs on its log handler.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

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


def scrub_job_args(session: orm.Session, job_id: int, task_name: str) -> None:
    """Replace the secret arguments of a job that has ended by ``***`` (in ``session``)."""
    names = sorted(names_for(task_name))
    if not names:
        return
    masked = sa.func.jsonb_build_object(*[part for name in names for part in (name, MASK)])
    args: sa.ColumnClause[Any] = sa.column("args")
    session.execute(
        sa.update(sa.table("procrastinate_jobs", sa.column("id"), args))
        .where(sa.column("id") == job_id)
        .values(args=args.op("||")(masked))
    )


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
