"""Retry policy helpers: which failures are interruptions, how a failure is described."""

from __future__ import annotations

import psycopg
import pytest
import sqlalchemy as sa

from worker.domain.errors import PermanentError, TransientError
from worker.jobs import retry


def _dbapi(
    orig: Exception, statement: str = "INSERT INTO secret_table VALUES (%(code)s)"
) -> sa.exc.DBAPIError:
    return sa.exc.DBAPIError(statement, {"code": "271828"}, orig)


def test_a_database_error_is_described_without_its_statement_or_parameters() -> None:
    error = _dbapi(
        psycopg.errors.StringDataRightTruncation("value too long for type character varying(320)")
    )

    text = retry.describe(error)

    assert text == "StringDataRightTruncation: value too long for type character varying(320)"
    assert "INSERT" not in text and "271828" not in text


@pytest.mark.parametrize(
    "error",
    [
        psycopg.OperationalError("server closed the connection unexpectedly"),
        psycopg.errors.AdminShutdown("terminating connection due to administrator command"),
        psycopg.errors.SerializationFailure("could not serialize access"),
        psycopg.errors.DeadlockDetected("deadlock detected"),
    ],
    ids=["connection-lost", "admin-shutdown", "serialization", "deadlock"],
)
def test_broken_connections_and_aborted_transactions_are_interruptions(error: Exception) -> None:
    assert retry.is_interruption(error)
    assert retry.is_interruption(_dbapi(error))


@pytest.mark.parametrize(
    "error",
    [
        TransientError("HTTP 503"),
        PermanentError("bad input"),
        psycopg.errors.UniqueViolation("duplicate key"),
        psycopg.errors.QueryCanceled("statement timeout"),
    ],
)
def test_other_failures_are_not(error: Exception) -> None:
    assert not retry.is_interruption(error)


def test_the_final_attempt_and_the_retry_time_follow_the_policy() -> None:
    policy = retry.Retry(max_retries=2, default_retry_delay=10, backoff=3)

    assert not policy.is_final_attempt(1)
    assert policy.is_final_attempt(2)
    assert policy.retry_at(TransientError("x"), 2) is None
    assert policy.retry_at(PermanentError("x"), 0) is None
    assert policy.delay(2) == 30
