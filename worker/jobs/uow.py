"""The unit of work of a job: one session whose last transaction commits with the job's outcome.

:func:`worker.jobs.execution.run_job` creates it and hands it to the task (a task function that
declares a ``uow`` parameter gets it), which hands it to its domain service. What the service
writes through ``uow.session`` commits together with the job's end (``succeeded`` and its
outcome row), or not at all: that is the job's exactly-once part. Long work commits progress in
short steps with :meth:`UnitOfWork.checkpoint` (or ``with uow.step() as session:``), each of which
first checks that the job still belongs to this run, and holds no transaction open in between:
the network calls and computations of a step happen with no transaction open.

Inside a job, ``worker.db.session_scope()`` and ``.delay()`` join ``uow.session``: follow-up
jobs are deferred in the job's transaction.

What must happen only once a write is durable (deleting a file whose outcome the job records)
goes in :meth:`UnitOfWork.after_commit`: it runs after the session's next commit (the job's end,
or a step's), and is dropped if that transaction rolls back.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any, Self

import sqlalchemy as sa
from sqlalchemy import orm

from worker import db
from worker.jobs import state

logger = logging.getLogger(__name__)

#: ``session.info`` keys: the callbacks waiting for a commit, and whether the session is followed.
_AFTER_COMMIT = "after_commit_callbacks"
_FOLLOWED = "after_commit_followed"


class UnitOfWork:
    """One session for a job run (or for a task called directly, with no run to fence)."""

    def __init__(self, run: state.Run | None = None) -> None:
        self.run = run
        self._session: orm.Session | None = None
        self._used = False

    @property
    def session(self) -> orm.Session:
        """The job's session, opened at first use (a task that never uses the database costs
        no session and no connection)."""
        if self._session is None:
            self._session = db.job_session()
        return self._session

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def pending(self) -> bool:
        """Whether a transaction is open (something read or written since the last commit)."""
        return self._session is not None and self._session.in_transaction()

    @property
    def used_database(self) -> bool:
        """Whether the job has used the database through this unit of work at all."""
        return self._used or self.pending

    def checkpoint(self) -> None:
        """Commit what is written so far, in a short transaction of its own.

        Raises
        ------
        worker.jobs.state.Fenced
            The job was taken away from this run: nothing is committed.
        """
        if not self.pending:
            return
        self._used = True
        try:
            if self.run is not None:
                state.check(self.session, self.run)
            self.session.commit()
        except BaseException:
            self.session.rollback()
            raise

    def commit_success(self, *, result: Any, record: bool) -> None:
        """The job's last transaction: end its run as succeeded with what the task wrote, and
        commit, in one round trip (:func:`worker.jobs.state.succeed_and_commit`). Savepoints the
        task left open are released and pending ORM writes flushed first, as ``commit()`` would;
        then the session's after-commit event fires (after-commit actions run) and the session,
        whose transaction the server has ended, is closed (that sends nothing: the connection
        is idle), which is what ``commit()`` would do, without its bookkeeping.

        Raises
        ------
        worker.jobs.state.Fenced
            The job was taken away from this run: nothing is committed (the caller rolls back).
        """
        assert self.run is not None, "a unit of work without a run has no job to end"
        session = self.session
        while (nested := session.get_nested_transaction()) is not None:
            nested.commit()
        session.flush()
        state.succeed_and_commit(session.connection(), self.run, result=result, record=record)
        # committed: what ``session.commit()`` would still do is fire its after-commit event
        # (this unit of work's actions, and other listeners') and end its transaction
        session.dispatch.after_commit(session)
        session.close()

    @contextlib.contextmanager
    def step(self) -> Iterator[orm.Session]:
        """A short step: its writes commit when the block ends (rolled back on an exception)."""
        try:
            yield self.session
        except BaseException:
            self.rollback()
            raise
        self.checkpoint()

    def rollback(self) -> None:
        """Drop what is not committed yet."""
        if self.pending:
            self._used = True
            self.session.rollback()

    def close(self) -> None:
        """Roll back anything left and release the connection."""
        if self._session is not None:
            db.end_job_session(self._session)

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once the session's current transaction has committed (the job's
        end, or a step's); drop it if that transaction rolls back. A callback that raises is
        logged, never raised: the commit is done (what the callback did not do, a sweep must)."""
        session = self.session
        if not session.info.get(_FOLLOWED):
            session.info[_FOLLOWED] = True
            sa.event.listen(session, "after_commit", _run_callbacks)
            sa.event.listen(session, "after_rollback", _drop_callbacks)
        session.info.setdefault(_AFTER_COMMIT, []).append(callback)


def _run_callbacks(session: orm.Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint released: the transaction is not durable yet
    for callback in session.info.pop(_AFTER_COMMIT, []):
        try:
            callback()
        except Exception:  # the commit is done: a failed callback must not fail the job
            logger.exception(
                "an after-commit action failed", extra={"action": "after_commit_failed"}
            )


def _drop_callbacks(session: orm.Session) -> None:
    if not session.in_nested_transaction():
        session.info.pop(_AFTER_COMMIT, None)
