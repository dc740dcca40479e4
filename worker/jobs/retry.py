"""Retry policy: transient errors retry with capped exponential backoff, the rest fail at once.

Two kinds of failed runs are not the task's to judge and never use its retry budget: runs lost
with a dead worker (``worker.recovery``) and runs that failed only because the database
connection broke or the database gave up on the transaction (:func:`is_interruption`): those run
again whatever the task's policy says.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from dataclasses import dataclass, field

import psycopg
import psycopg_pool
import sqlalchemy as sa
from procrastinate import jobs
from procrastinate.retry import BaseRetryStrategy, RetryDecision

from worker.domain.errors import PermanentError, TransientError

#: Exceptions retried by default: our transient family and network/database hiccups.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    TransientError,
    ConnectionError,
    TimeoutError,
    psycopg.OperationalError,
    sa.exc.OperationalError,
)
#: Upper bound of one retry delay, in seconds.
MAX_RETRY_DELAY = 3600.0


@dataclass(frozen=True, kw_only=True)
class Retry(BaseRetryStrategy):
    """Celery's ``max_retries`` / ``default_retry_delay``, with exponential backoff.

    The n-th retry (n = 1, 2, ...) waits ``default_retry_delay * backoff ** (n - 1)`` seconds,
    capped at ``max_delay``. ``Retry(max_retries=3, default_retry_delay=60)`` is the seed's pattern.

    Parameters
    ----------
    max_retries:
        Retries after the first run (so at most ``max_retries + 1`` runs).
    default_retry_delay:
        Seconds before the first retry.
    backoff:
        Multiplier of the delay at each further retry (1 for a fixed delay).
    max_delay:
        Cap of a single delay, in seconds.
    retry_on:
        Exception types that are retried; anything else (and every ``PermanentError``) fails
        the job at once.
    """

    max_retries: int = 3
    default_retry_delay: float = 60.0
    backoff: float = 2.0
    max_delay: float = MAX_RETRY_DELAY
    retry_on: tuple[type[BaseException], ...] = field(default=TRANSIENT_ERRORS)

    def __post_init__(self) -> None:
        if self.max_retries < 0 or self.default_retry_delay < 0 or self.backoff < 1:
            raise ValueError(
                "Retry: max_retries and default_retry_delay must be >= 0 and backoff >= 1"
            )

    def retries(self, exception: BaseException) -> bool:
        """Whether ``exception`` belongs to a family this policy retries."""
        return isinstance(exception, self.retry_on) and not isinstance(exception, PermanentError)

    def delay(self, attempts: int) -> float:
        """Seconds to wait after the ``attempts``-th run failed (``attempts`` >= 1)."""
        return min(self.max_delay, self.default_retry_delay * self.backoff ** (attempts - 1))

    def is_final_attempt(self, attempts: int) -> bool:
        """Whether a run after ``attempts`` counted failures is the last one a failure allows."""
        return attempts >= self.max_retries

    def retry_at(self, exception: BaseException, attempts: int) -> datetime.datetime | None:
        """When to run again after the ``attempts + 1``-th run failed with ``exception``, or
        ``None`` when the failure is final."""
        if not self.retries(exception) or self.is_final_attempt(attempts):
            return None
        return _now() + datetime.timedelta(seconds=self.delay(attempts + 1))

    def get_retry_decision(
        self, *, exception: BaseException, job: jobs.Job
    ) -> RetryDecision | None:
        retry_at = self.retry_at(exception, job.attempts)
        return None if retry_at is None else RetryDecision(retry_at=retry_at)


#: No retry at all: the first failure is final.
NO_RETRY = Retry(max_retries=0)


#: SQLSTATEs of a broken connection or a transaction the database gave up on: connection
#: exceptions (class 08), admin/crash shutdown, cannot connect now, serialization failure,
#: deadlock.
_INTERRUPTION_STATES = frozenset({"57P01", "57P02", "57P03", "40001", "40P01"})
#: Re-runs after interruptions before a job's own retry policy decides after all.
MAX_INTERRUPTIONS = 20


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _chain(exception: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exception
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        if isinstance(current, sa.exc.DBAPIError) and isinstance(current.orig, BaseException):
            yield current.orig
        current = current.__cause__ or current.__context__


def is_interruption(exception: BaseException) -> bool:
    """Whether a run failed only because the database connection broke (server restart,
    failover, reset connection) or the database aborted its transaction (serialization failure,
    deadlock): running it again is always right, and uses no retry budget."""
    for error in _chain(exception):
        if isinstance(error, sa.exc.DBAPIError) and error.connection_invalidated:
            return True
        if isinstance(error, (sa.exc.DisconnectionError, psycopg_pool.PoolTimeout)):
            return True
        if isinstance(error, psycopg.Error):
            sqlstate = error.sqlstate
            if sqlstate is None and isinstance(error, psycopg.OperationalError):
                return True  # the client lost the connection: no server answer at all
            if sqlstate is not None and (
                sqlstate.startswith("08") or sqlstate in _INTERRUPTION_STATES
            ):
                return True
    return False


def describe(exception: BaseException) -> str:
    """``Type: message`` of a failure, for the job's outcome; a database error is described by
    the driver's own error (never the SQL statement and parameters SQLAlchemy adds)."""
    if isinstance(exception, sa.exc.DBAPIError) and exception.orig is not None:
        orig = exception.orig
        message = str(orig).strip() or type(orig).__name__
        return f"{type(orig).__name__}: {message}"
    text = str(exception)
    return f"{type(exception).__name__}: {text}" if text else type(exception).__name__
