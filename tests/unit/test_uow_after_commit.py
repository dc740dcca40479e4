"""``UnitOfWork.after_commit``: run after the outermost commit, dropped on rollback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from worker import db
from worker.jobs.uow import UnitOfWork


@pytest.fixture(autouse=True)
def sqlite() -> Iterator[None]:
    engine = sa.create_engine("sqlite://")
    db.bind(engine)
    yield
    db.bind(None)
    engine.dispose()


def test_a_callback_runs_once_after_the_commit_and_not_before() -> None:
    ran: list[str] = []
    with UnitOfWork() as uow:
        uow.session.execute(sa.text("SELECT 1"))
        uow.after_commit(lambda: ran.append("deleted"))
        assert ran == []
        uow.checkpoint()
        assert ran == ["deleted"]
        uow.session.execute(sa.text("SELECT 1"))
        uow.checkpoint()
    assert ran == ["deleted"]


def test_a_rollback_drops_the_callback() -> None:
    ran: list[str] = []
    with UnitOfWork() as uow:
        uow.session.execute(sa.text("SELECT 1"))
        uow.after_commit(lambda: ran.append("deleted"))
        uow.rollback()
        uow.session.execute(sa.text("SELECT 1"))
        uow.checkpoint()
    assert ran == []


def test_a_step_that_raises_drops_the_callback() -> None:
    ran: list[str] = []
    with UnitOfWork() as uow, pytest.raises(ValueError):
        with uow.step() as session:
            session.execute(sa.text("SELECT 1"))
            uow.after_commit(lambda: ran.append("deleted"))
            raise ValueError("refused")
    assert ran == []


def test_a_released_savepoint_does_not_run_it_but_the_commit_does() -> None:
    ran: list[str] = []
    with UnitOfWork() as uow:
        uow.after_commit(lambda: ran.append("deleted"))
        with uow.session.begin_nested():
            uow.session.execute(sa.text("SELECT 1"))
        assert ran == []
        uow.checkpoint()
    assert ran == ["deleted"]


def test_a_failing_callback_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    def fail() -> None:
        raise OSError("disk gone")

    with UnitOfWork() as uow:
        uow.session.execute(sa.text("SELECT 1"))
        uow.after_commit(fail)
        uow.checkpoint()
    assert "an after-commit action failed" in caplog.text
