"""``each_document``: one outcome per document, one summary error that says whether to retry."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from worker.domain import indexing
from worker.domain.errors import DomainError, PermanentError, TransientError


def step(outcomes: dict[str, str | DomainError]) -> Callable[[str], str | None]:
    def run(document_id: str) -> str | None:
        outcome = outcomes[document_id]
        if isinstance(outcome, DomainError):
            raise outcome
        return outcome

    return run


def retried(exc: BaseException) -> bool:
    return isinstance(exc, TransientError)


def test_every_document_done_returns_their_outcomes() -> None:
    outcomes = {"a": "completed", "b": "paused"}

    assert indexing.each_document(["a", "b"], step(outcomes), retrying=retried) == outcomes


def test_a_failure_to_be_retried_makes_the_summary_transient() -> None:
    outcomes = {"a": "completed", "b": TransientError("HTTP 503"), "c": PermanentError("bad")}

    with pytest.raises(TransientError) as info:
        indexing.each_document(["a", "b", "c"], step(outcomes), retrying=retried)

    assert str(info.value) == ("2 of 3 document(s) failed: b: HTTP 503 (to be retried); c: bad")


def test_failures_not_retried_make_the_summary_permanent() -> None:
    outcomes = {"a": TransientError("HTTP 503"), "b": "error"}

    with pytest.raises(PermanentError) as info:
        indexing.each_document(["a", "b"], step(outcomes))  # outside a job: never retried

    assert str(info.value) == (
        "2 of 2 document(s) failed: a: HTTP 503; b: in error (its error says why)"
    )
