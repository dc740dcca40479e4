"""Retry policy: transient errors retry with capped exponential backoff, the rest fail at once."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg
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

    def get_retry_decision(
        self, *, exception: BaseException, job: jobs.Job
    ) -> RetryDecision | None:
        if not self.retries(exception) or job.attempts >= self.max_retries:
            return None
        return RetryDecision(retry_in={"seconds": int(self.delay(job.attempts + 1))})


#: No retry at all: the first failure is final.
NO_RETRY = Retry(max_retries=0)
