"""The unit of work the domain services are handed: the job's session and its short steps.

A service never opens a transaction of its own and never commits: it takes the job's unit of work
(``worker.jobs.uow.UnitOfWork`` in a job, or a standalone one in tests and commands) as its first
parameter. What it writes through ``uow.session`` outside a step commits *with the job's outcome*
(or not at all); a step (``with uow.step() as session:``) commits at the end of its block, for
progress that must outlive a later failure. No transaction is open between steps: network calls
(embeddings, Notion, websites) happen there.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Protocol

from sqlalchemy import orm


class UnitOfWork(Protocol):
    """What the domain needs of a job's unit of work (``worker.jobs.uow.UnitOfWork``)."""

    @property
    def session(self) -> orm.Session:
        """The job's session: what is written through it commits with the job's outcome."""
        ...

    def step(self) -> AbstractContextManager[orm.Session]:
        """A short step on ``session``, committed when the block ends (rolled back if it raises)."""
        ...

    def checkpoint(self) -> None:
        """Commit what ``session`` holds now, in a short transaction of its own."""
        ...

    def rollback(self) -> None:
        """Drop what ``session`` holds and has not committed."""
        ...
