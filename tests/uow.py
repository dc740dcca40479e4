"""Calling domain services outside a job, as a task called directly does."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from worker.jobs.uow import UnitOfWork

T = TypeVar("T")


def run(service: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``service(uow, *args, **kwargs)`` in a unit of work of its own; what it left for the
    job's end commits when it returns (a job would commit it with its outcome)."""
    with UnitOfWork() as uow:
        result = service(uow, *args, **kwargs)
        uow.checkpoint()
    return result
