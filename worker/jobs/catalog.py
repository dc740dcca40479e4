"""The registered tasks, found by any of their names: what ``manage.py defer`` and ``tasks`` use.

A task answers to its registered name (``mail.email_code_login``), its former names
(``aliases=``) and the name Dify's code calls it by: its function's name
(``send_email_code_login_mail_task``), or any other name ``worker.tasks`` exports it under
(``send_enterprise_email_task``, the enterprise mail's earlier name).
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from procrastinate import tasks

from worker.app import TASKS_PACKAGE, app
from worker.jobs import secrets
from worker.jobs.retry import Retry
from worker.jobs.task import CeleryTask


class UnknownTask(LookupError):
    """No registered task answers to the name given."""


@dataclass(frozen=True, kw_only=True)
class TaskInfo:
    """What ``manage.py tasks`` prints of one task."""

    name: str
    #: Names Dify's code uses for it (function names), and former names.
    other_names: tuple[str, ...]
    queue: str
    #: ``name: type = default`` of each job argument.
    arguments: tuple[str, ...]
    retry: str
    lock: str | None
    queueing_lock: str | None
    secret_args: tuple[str, ...]


def import_tasks() -> None:
    """Import every task module (``worker.tasks.*`` and ``WORKER_IMPORT_PATHS``)."""
    app.perform_import_paths()  # type: ignore[no-untyped-call]


def find(name: str) -> tasks.Task[Any, Any, Any]:
    """The task answering to ``name``: registered name, alias, or Dify function name.

    Raises
    ------
    UnknownTask
        No task answers to it, or several do (their registered names are then listed).
    """
    import_tasks()
    registered = app.tasks.get(name)
    if registered is not None:
        return registered
    matches = {task.name: task for task in _by_other_name().get(name, [])}
    if len(matches) == 1:
        return next(iter(matches.values()))
    if matches:
        raise UnknownTask(
            f"task name {name!r} is ambiguous: use one of {', '.join(sorted(matches))}"
        )
    raise UnknownTask(f"unknown task {name!r}; `manage.py tasks` lists every task and its names")


def describe_all() -> list[TaskInfo]:
    """Every task of this process (after importing the task modules), by registered name."""
    import_tasks()
    others: dict[str, set[str]] = {}
    for other, found in _by_other_name().items():
        for task in found:
            others.setdefault(task.name, set()).add(other)
    unique = {task.name: task for task in app.tasks.values() if _ours(task)}
    return [_describe(unique[name], sorted(others.get(name, ()))) for name in sorted(unique)]


def _ours(task: tasks.Task[Any, Any, Any]) -> bool:
    return not task.name.startswith("procrastinate.")


def _by_other_name() -> dict[str, list[tasks.Task[Any, Any, Any]]]:
    """Tasks by every name other than their registered one."""
    found: dict[str, list[tasks.Task[Any, Any, Any]]] = {}

    def add(name: str, task: tasks.Task[Any, Any, Any]) -> None:
        if name != task.name and task not in found.setdefault(name, []):
            found[name].append(task)

    for key, task in app.tasks.items():
        if not _ours(task):
            continue
        add(key, task)  # aliases are registered under their own key
        if isinstance(task, CeleryTask):
            add(task.run.__name__, task)
    for name, value in _exported(importlib.import_module(TASKS_PACKAGE)):
        if isinstance(value, CeleryTask):
            add(name, value)
    return found


def _exported(module: Any) -> Iterable[tuple[str, Any]]:
    return ((name, getattr(module, name)) for name in getattr(module, "__all__", ()))


def _describe(task: tasks.Task[Any, Any, Any], other_names: list[str]) -> TaskInfo:
    if isinstance(task, CeleryTask):
        arguments = tuple(_parameter(p) for p in task.signature.parameters.values())
        policy = describe_retry(task.retry_policy)
    else:
        arguments = ("**kwargs",)
        policy = "procrastinate's"
    return TaskInfo(
        name=task.name,
        other_names=tuple(other_names),
        queue=task.queue,
        arguments=arguments,
        retry=policy,
        lock=task.lock,
        queueing_lock=task.queueing_lock,
        secret_args=tuple(sorted(secrets.names_for(task.name))),
    )


def _parameter(parameter: inspect.Parameter) -> str:
    text = parameter.name
    annotation = parameter.annotation
    if annotation is not inspect.Parameter.empty:
        # a string under ``from __future__ import annotations``: as written
        shown = annotation if isinstance(annotation, str) else inspect.formatannotation(annotation)
        text += f": {shown}"
    if parameter.default is not inspect.Parameter.empty:
        text += f" = {parameter.default!r}"
    return text


def describe_retry(policy: Retry) -> str:
    """``no retry``, or the retries and their delays: ``3 retries, after 10 s x3 (max 600 s)``."""
    if policy.max_retries == 0:
        return "no retry"
    growth = "" if policy.backoff == 1 else f" x{policy.backoff:g}"
    return (
        f"{policy.max_retries} {'retry' if policy.max_retries == 1 else 'retries'}, "
        f"after {policy.default_retry_delay:g} s{growth} (max {policy.max_delay:g} s)"
    )
