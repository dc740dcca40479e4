"""Celery's result API over procrastinate's job rows and our ``task_results``."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from worker import db
from worker.jobs import deferring
from worker.jobs.task import Signature

PENDING = "PENDING"
STARTED = "STARTED"
RETRY = "RETRY"
SUCCESS = "SUCCESS"
FAILURE = "FAILURE"
REVOKED = "REVOKED"
#: States after which a job's outcome will not change.
READY_STATES = frozenset({SUCCESS, FAILURE, REVOKED})

#: First and longest pause between two polls of :meth:`AsyncResult.get`, in seconds.
POLL_INTERVAL = (0.02, 0.5)

_SNAPSHOT = sa.text(
    """
    SELECT j.status AS job_status, j.attempts, r.status AS outcome, r.result, r.error
    FROM (SELECT CAST(:id AS bigint) AS id) AS k
    LEFT JOIN procrastinate_jobs AS j ON j.id = k.id
    LEFT JOIN task_results AS r ON r.job_id = k.id
    """
)


class UnknownJob(LookupError):
    """No job with this id exists, nor any recorded outcome of one."""


class TaskFailed(Exception):
    """Raised by :meth:`AsyncResult.get` when the job failed; the message is its error."""


class ResultTimeout(TimeoutError):
    """:meth:`AsyncResult.get` waited ``timeout`` seconds and the job was not finished."""


@dataclass(frozen=True)
class _Snapshot:
    state: str
    result: Any
    error: str | None


class AsyncResult:
    """Handle on one job, by id: ``status``, ``ready()``, ``result``, ``info``, ``get()``."""

    def __init__(self, id: int | str) -> None:
        self.id = int(id)

    def __repr__(self) -> str:
        return f"<AsyncResult {self.id}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AsyncResult) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    @property
    def status(self) -> str:
        """``PENDING``, ``STARTED``, ``RETRY``, ``SUCCESS``, ``FAILURE`` or ``REVOKED``.

        Raises
        ------
        UnknownJob
            Neither a job nor an outcome exists under this id.
        """
        return self._snapshot().state

    state = status

    def ready(self) -> bool:
        """Whether the job has finished (succeeded, failed or was revoked)."""
        return self.status in READY_STATES

    def successful(self) -> bool:
        """Whether the job succeeded."""
        return self.status == SUCCESS

    def failed(self) -> bool:
        """Whether the job failed for good."""
        return self.status == FAILURE

    @property
    def result(self) -> Any:
        """The task's return value once it succeeded, its error text once it failed."""
        snapshot = self._snapshot()
        return snapshot.result if snapshot.state == SUCCESS else snapshot.error

    @property
    def info(self) -> Any:
        """Like Celery: the return value on success, the error text on failure."""
        return self.result

    def get(self, timeout: float | None = None, *, propagate: bool = True) -> Any:
        """Wait for the job to finish and return its result.

        Raises
        ------
        ResultTimeout
            ``timeout`` seconds passed first.
        TaskFailed
            The job failed or was revoked (only with ``propagate``; else its error is returned).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        pause = POLL_INTERVAL[0]
        while True:
            snapshot = self._snapshot(fresh=True)
            if snapshot.state == SUCCESS:
                return snapshot.result
            if snapshot.state in READY_STATES:
                if propagate:
                    raise TaskFailed(snapshot.error or f"job {self.id} {snapshot.state.lower()}")
                return snapshot.error
            if deadline is not None and time.monotonic() >= deadline:
                raise ResultTimeout(f"job {self.id} still {snapshot.state} after {timeout} s")
            time.sleep(pause if deadline is None else min(pause, deadline - time.monotonic()))
            pause = min(pause * 2, POLL_INTERVAL[1])

    def _snapshot(self, *, fresh: bool = False) -> _Snapshot:
        with db.session_scope(new=fresh) as session:
            row = session.execute(_SNAPSHOT, {"id": self.id}).one()
        if row.job_status is None and row.outcome is None:
            raise UnknownJob(f"no job with id {self.id}")
        state = job_state(row.job_status, row.attempts, row.outcome)
        return _Snapshot(state=state, result=row.result, error=row.error)


def job_state(job_status: str | None, attempts: int | None, outcome: str | None) -> str:
    """Celery's state of a job from procrastinate's status and our recorded outcome."""
    if outcome == SUCCESS or job_status == "succeeded":
        return SUCCESS
    if job_status in ("cancelled", "aborted", "aborting"):
        return REVOKED
    if job_status == "failed" or job_status is None:
        return FAILURE
    if job_status == "doing":
        return RETRY if outcome == RETRY else STARTED
    return RETRY if attempts else PENDING


class GroupResult:
    """Results of a :class:`group`, in the order of its signatures."""

    def __init__(self, results: list[AsyncResult]) -> None:
        self.results = results

    def __iter__(self) -> Any:
        return iter(self.results)

    def __len__(self) -> int:
        return len(self.results)

    def ready(self) -> bool:
        """Whether every job has finished."""
        return all(result.ready() for result in self.results)

    def successful(self) -> bool:
        """Whether every job succeeded."""
        return all(result.successful() for result in self.results)

    def completed_count(self) -> int:
        """How many jobs succeeded so far."""
        return sum(result.successful() for result in self.results)

    def get(self, timeout: float | None = None, *, propagate: bool = True) -> list[Any]:
        """Wait for every job (within ``timeout`` seconds overall) and return their results."""
        deadline = None if timeout is None else time.monotonic() + timeout
        values = []
        for result in self.results:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            values.append(result.get(timeout=remaining, propagate=propagate))
        return values


class group:
    """Celery's ``group``: signatures deferred together, in one transaction and batched."""

    def __init__(self, *signatures: Signature | Iterable[Signature]) -> None:
        if len(signatures) == 1 and not isinstance(signatures[0], Signature):
            signatures = tuple(signatures[0])
        self.signatures: list[Signature] = list(signatures)  # type: ignore[arg-type]

    def apply_async(self, *, session: orm.Session | None = None) -> GroupResult:
        """Defer every signature in one transaction (the open one, if any)."""
        items = [
            (signature.task, signature.arguments, signature.task.defer_options(signature.arguments))
            for signature in self.signatures
        ]
        ids = deferring.defer_signatures(items, session=session)
        return GroupResult([AsyncResult(job_id) for job_id in ids])

    delay = apply_async
