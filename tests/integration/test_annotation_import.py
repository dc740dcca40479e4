"""The CSV import of annotations, in-process on a real database."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests import annotations, factories
from tests.uow import run
from worker import db, runtime
from worker.config import Settings
from worker.domain import job_status
from worker.domain.annotation import imports, store
from worker.domain.models import JobKind, MessageAnnotation
from worker.domain.pipeline import Pipeline

KIND = JobKind.ANNOTATION_BATCH_IMPORT
ROWS = [
    {"question": "How do I reset my password?", "answer": "Settings > Security."},
    {"question": "Where is my invoice?", "answer": "Billing > Invoices."},
    {"question": "Can I export data?", "answer": "Yes, as CSV."},
]


@pytest.fixture(autouse=True)
def task_layer(database_url: str, tmp_path: Path) -> Iterator[runtime.Runtime]:
    yield runtime.setup(database_url, settings=Settings(storage_local_path=tmp_path / "storage"))
    runtime.teardown()


@pytest.fixture
def pipeline() -> Pipeline:
    return runtime.current().pipeline


@dataclass
class Target:
    tenant_id: str
    app_id: str


def make_target(*, enabled_on: store.Binding | None = None) -> Target:
    with db.session_scope() as session:
        tenant = factories.make_tenant(session)
        app = annotations.make_app(session, tenant)
        if enabled_on is not None:
            annotations.make_setting(session, app, enabled_on)
        return Target(str(tenant.id), str(app.id))


def import_rows(
    p: Pipeline, target: Target, rows: object, job_id: str | None = None
) -> tuple[str, str]:
    job_id = job_id or str(uuid.uuid4())
    outcome = run(
        imports.batch_import, p, job_id=job_id, content_list=rows, app_id=target.app_id,
        tenant_id=target.tenant_id, user_id=str(factories.USER),
    )  # fmt: skip
    return job_id, outcome


def status(job_id: str) -> dict[str, str]:
    with db.session_scope() as session:
        return job_status.read(session, KIND, job_id)


def test_import_into_an_enabled_app_adds_annotations_and_their_vectors(
    pipeline: Pipeline,
) -> None:
    binding = annotations.binding("model-a")
    target = make_target(enabled_on=binding)

    job_id, outcome = import_rows(pipeline, target, ROWS)

    assert outcome == "imported 3 annotation(s)"
    assert annotations.annotation_count(target.app_id) == 3
    found = annotations.vectors(binding.collection, target.app_id)
    assert sorted(found.values()) == sorted(row["question"] for row in ROWS)
    with db.session_scope() as session:
        answers = set(
            session.scalars(
                sa.select(MessageAnnotation.content).where(
                    MessageAnnotation.app_id == target.app_id
                )
            )
        )
    assert answers == {row["answer"] for row in ROWS}
    assert status(job_id)["job_status"] == "completed"


def test_import_into_a_disabled_app_adds_annotations_and_no_vector(pipeline: Pipeline) -> None:
    target = make_target()

    import_rows(pipeline, target, ROWS)

    assert annotations.annotation_count(target.app_id) == 3
    assert annotations.annotation_vectors(target.app_id) == {}


def test_running_the_same_import_job_twice_never_duplicates(pipeline: Pipeline) -> None:
    binding = annotations.binding("model-a")
    target = make_target(enabled_on=binding)
    job_id, _ = import_rows(pipeline, target, ROWS)

    _, outcome = import_rows(pipeline, target, ROWS, job_id=job_id)

    assert outcome == "imported 0 annotation(s)"
    assert annotations.annotation_count(target.app_id) == 3
    assert len(annotations.vectors(binding.collection, target.app_id)) == 3
    assert status(job_id)["job_status"] == "completed"


def test_another_import_of_the_same_rows_adds_them_again(pipeline: Pipeline) -> None:
    target = make_target()
    import_rows(pipeline, target, ROWS)

    import_rows(pipeline, target, ROWS)  # another job: the user uploaded the file twice

    assert annotations.annotation_count(target.app_id) == 6


@pytest.mark.parametrize(
    ("bad", "named"),
    [
        ({"question": "Where is my invoice?"}, "row 2 (content_list[1]): 'answer'"),
        ({"question": "  ", "answer": "x"}, "row 2 (content_list[1]): 'question'"),
        ("just text", "row 2 (content_list[1]) is not an object"),
    ],
)
def test_a_bad_row_fails_naming_it_and_inserts_nothing(
    pipeline: Pipeline, bad: object, named: str
) -> None:
    binding = annotations.binding("model-a")
    target = make_target(enabled_on=binding)
    job_id = str(uuid.uuid4())

    with pytest.raises(imports.InvalidImportItem, match=re.escape(named)):
        import_rows(pipeline, target, [ROWS[0], bad, ROWS[2]], job_id=job_id)

    assert annotations.annotation_count(target.app_id) == 0
    assert annotations.annotation_vectors(target.app_id) == {}
    answer = status(job_id)
    assert answer["job_status"] == "error"
    assert named in answer["error_msg"]


def test_import_into_a_missing_app_ends_in_error(pipeline: Pipeline) -> None:
    target = make_target()
    gone = Target(target.tenant_id, str(uuid.uuid4()))
    job_id = str(uuid.uuid4())

    with pytest.raises(store.AppNotFound):
        import_rows(pipeline, gone, ROWS, job_id=job_id)

    assert status(job_id)["job_status"] == "error"
    assert "App not found" in status(job_id)["error_msg"]
