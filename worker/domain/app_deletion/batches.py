"""The batched deleter: at most :data:`BATCH` rows a statement, one short transaction each.

Every batch commits with the job's progress (rows deleted per table so far, and the table being
emptied), so ``manage.py jobs show`` tells how far a running deletion got, and a re-run after a
crash goes on counting from what was committed. A batch the database refuses (a trigger, a
constraint, a lock timeout) fails the job with :class:`DeletionFailed` naming the table: it is
never selected again in the same run, so nothing loops.
"""

from __future__ import annotations

import json
import logging
import typing
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from worker.domain import sql
from worker.domain.errors import TransientError
from worker.domain.models import JobProgress
from worker.domain.uow import UnitOfWork

logger = logging.getLogger(__name__)

#: Most rows one statement deletes.
BATCH = 1000


class DeletionFailed(TransientError):
    """A batch of the deletion failed; the job retries and resumes."""

    def __init__(self, table: str, exc: BaseException) -> None:
        cause = getattr(exc, "orig", None) or exc
        reason = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
        super().__init__(f"deleting from {table} failed: {type(cause).__name__}: {reason}")
        self.table = table


class Deleter:
    """Deletes in batches through ``uow`` and records the job's progress with each batch.

    Parameters
    ----------
    uow:
        The job's unit of work: each batch is a :meth:`~UnitOfWork.step` of its own.
    job_id:
        The job whose progress is recorded (``None``: a direct call, nothing recorded).
    """

    def __init__(self, uow: UnitOfWork, job_id: int | None) -> None:
        self.uow = uow
        self.job_id = job_id
        self.deleted: dict[str, int] = {}
        self.current: str | None = None
        if job_id is not None:
            with uow.step() as session:
                found = session.get(JobProgress, job_id, populate_existing=True)
            if found is not None:  # a re-run after a crash: go on counting
                self.deleted = {str(k): int(v) for k, v in found.progress["deleted"].items()}

    @contextmanager
    def batch(self, table: str) -> Iterator[orm.Session]:
        """One short step deleting from ``table``; its errors become :class:`DeletionFailed`."""
        self.current = table
        self.deleted.setdefault(table, 0)
        try:
            with self.uow.step() as session:
                yield session
                self._record(session)
        except sa.exc.DBAPIError as exc:
            raise DeletionFailed(table, exc) from exc

    def count(self, table: str, rows: int) -> None:
        """Add ``rows`` deleted from ``table`` (recorded with the current batch)."""
        self.deleted[table] = self.deleted.get(table, 0) + rows

    def keyset(self, table: Any, *conditions: sa.ColumnElement[bool]) -> int:
        """Delete every row of ``table`` matching ``conditions``, walking its ids upwards."""
        last: uuid.UUID | None = None
        total = 0
        while True:
            chosen = sa.select(table.id).where(*conditions).order_by(table.id).limit(BATCH)
            if last is not None:
                chosen = chosen.where(table.id > last)
            ids = self._delete(table, table.id.in_(chosen.scalar_subquery()))
            total += len(ids)
            if len(ids) < BATCH:
                return total
            last = max(ids)

    def all_of(self, table: Any, *conditions: sa.ColumnElement[bool]) -> int:
        """Delete every row of ``table`` matching ``conditions`` (a bounded set: the children
        of one batch of parents), :data:`BATCH` per statement."""
        total = 0
        while True:
            chosen = sa.select(table.id).where(*conditions).limit(BATCH).scalar_subquery()
            deleted = len(self._delete(table, table.id.in_(chosen)))
            total += deleted
            if deleted < BATCH:
                return total

    def raw(self, table: str, name: str, **parameters: Any) -> int:
        """Run the named SQL block ``name`` (a bounded delete) until it deletes fewer than
        :data:`BATCH` rows."""
        total = 0
        while True:
            with self.batch(table) as session:
                result = session.execute(
                    sa.text(sql.queries()[name]), {**parameters, "batch": BATCH}
                )
                deleted = typing.cast("sa.CursorResult[Any]", result).rowcount
                self.count(table, deleted)
            total += deleted
            if deleted < BATCH:
                return total

    def guarded(self, table: str, work: Callable[[], int]) -> int:
        """Run ``work`` (steps of its own deleting from ``table`` and blobs), its database and
        storage errors named by the table, and count what it returns."""
        self.current = table
        try:
            rows = work()
        except (sa.exc.DBAPIError, OSError, TransientError) as exc:
            raise DeletionFailed(table, exc) from exc
        with self.batch(table):
            self.count(table, rows)
        return rows

    def finish(self, session: orm.Session) -> None:
        """Drop the progress row in the job's final transaction: the outcome says it all."""
        if self.job_id is not None:
            session.execute(sa.delete(JobProgress).where(JobProgress.job_id == self.job_id))

    def _delete(self, table: Any, condition: sa.ColumnElement[bool]) -> list[uuid.UUID]:
        name = table.__tablename__
        with self.batch(name) as session:
            ids = list(session.scalars(sa.delete(table).where(condition).returning(table.id)))
            self.count(name, len(ids))
        return ids

    def _record(self, session: orm.Session) -> None:
        if self.job_id is None:
            return
        progress = {"step": self.current, "deleted": self.deleted}
        session.execute(
            sa.text(sql.queries()["job_progress_record"]),
            {"job_id": self.job_id, "progress": json.dumps(progress)},
        )
