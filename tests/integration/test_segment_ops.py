"""The segment services in-process on a real database: import, enable, disable, delete."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests import factories
from tests import segments as seg
from tests.uow import run
from worker import db, runtime
from worker.config import Settings
from worker.domain import job_status
from worker.domain.errors import PermanentError, TransientError
from worker.domain.models import DocumentSegment, IndexStructureType, JobKind, Tenant
from worker.domain.pipeline import Pipeline
from worker.domain.segment_ops import busy, imports, removal, toggle
from worker.domain.segment_ops.rows import InvalidImportRow
from worker.tasks import disable_segment_from_index_task, enable_segments_to_index_task

PARENT_CHILD = IndexStructureType.PARENT_CHILD_INDEX
KIND = JobKind.SEGMENT_BATCH_IMPORT


@pytest.fixture(autouse=True)
def task_layer(database_url: str, tmp_path: Path) -> Iterator[runtime.Runtime]:
    settings = Settings(storage_local_path=tmp_path / "storage", indexing_batch_size=2)
    yield runtime.setup(database_url, settings=settings)
    runtime.teardown()


@pytest.fixture
def pipeline() -> Pipeline:
    return runtime.current().pipeline


def import_rows(p: Pipeline, doc: seg.Doc, content: object, job_id: str | None = None) -> str:
    return run(
        imports.batch_create, p, job_id=job_id or str(uuid.uuid4()), content=content,
        dataset_id=doc.dataset_id, document_id=doc.document_id, tenant_id=doc.tenant_id,
        user_id=str(factories.USER),
    )  # fmt: skip


def imported(p: Pipeline, form: IndexStructureType) -> tuple[seg.Doc, list[DocumentSegment]]:
    doc = seg.make_completed_document(form)
    import_rows(p, doc, seg.rows(form))
    return doc, seg.segment_rows(doc.document_id)


def vectors_per_segment(doc: seg.Doc) -> dict[str, int]:
    counts: dict[str, int] = {}
    for parent in seg.vectors_of(doc).values():
        counts[parent] = counts.get(parent, 0) + 1
    return counts


@pytest.mark.parametrize("form", seg.FORMS)
def test_import_indexes_three_segments_once_even_when_run_twice(
    pipeline: Pipeline, form: IndexStructureType
) -> None:
    doc = seg.make_completed_document(form)
    job_id = str(uuid.uuid4())
    assert import_rows(pipeline, doc, seg.rows(form), job_id) == "imported 3 segment(s)"
    assert import_rows(pipeline, doc, seg.rows(form), job_id) == "imported 3 segment(s)"

    rows = seg.segment_rows(doc.document_id)
    assert [r.position for r in rows] == [1, 2, 3]
    assert {r.status.value for r in rows} == {"completed"}
    nodes = {str(r.index_node_id) for r in rows}
    per_segment = vectors_per_segment(doc)
    assert set(per_segment) == nodes
    expected = 2 if form is PARENT_CHILD else 1  # two sentences: two child chunks
    assert set(per_segment.values()) == {expected}
    assert seg.keyword_nodes(doc) == nodes
    assert seg.child_count(doc.document_id) == (6 if form is PARENT_CHILD else 0)
    if form is IndexStructureType.QA_INDEX:
        assert rows[0].answer == "Item 0 is a thing."
    with db.session_scope() as session:
        assert job_status.read(session, KIND, job_id)["job_status"] == "completed"


def test_a_second_import_appends_after_the_last_position(pipeline: Pipeline) -> None:
    doc, _ = imported(pipeline, IndexStructureType.PARAGRAPH_INDEX)
    import_rows(pipeline, doc, seg.rows(IndexStructureType.PARAGRAPH_INDEX, 2))
    assert [r.position for r in seg.segment_rows(doc.document_id)] == [1, 2, 3, 4, 5]


def test_a_bad_row_fails_the_job_naming_it_and_inserts_nothing(pipeline: Pipeline) -> None:
    doc = seg.make_completed_document(IndexStructureType.QA_INDEX)
    job_id = str(uuid.uuid4())
    bad = [{"content": "Q?", "answer": "A."}, {"content": "No answer?"}]
    with pytest.raises(InvalidImportRow, match=r"row 2: 'answer' is missing"):
        import_rows(pipeline, doc, bad, job_id)
    assert seg.segment_rows(doc.document_id) == []
    with db.session_scope() as session:
        answer = job_status.read(session, KIND, job_id)
    assert answer["job_status"] == "error" and "row 2" in answer["error_msg"]


def test_import_into_a_disabled_document_is_refused(pipeline: Pipeline) -> None:
    doc = seg.make_completed_document(IndexStructureType.PARAGRAPH_INDEX)
    with db.session_scope() as session:
        session.execute(sa.text("UPDATE documents SET enabled = false WHERE id = :id"),
                        {"id": doc.document_id})  # fmt: skip
    with pytest.raises(PermanentError, match="document is disabled"):
        import_rows(pipeline, doc, seg.rows(IndexStructureType.PARAGRAPH_INDEX))
    assert seg.segment_rows(doc.document_id) == []


def test_import_from_an_uploaded_csv_file(pipeline: Pipeline, tmp_path: Path) -> None:
    doc = seg.make_completed_document(IndexStructureType.QA_INDEX)
    csv = 'question,answer\n"What, exactly?",It is a test.\n\nWhy?,Because.\n'
    with db.session_scope() as session:
        tenant = session.get(Tenant, uuid.UUID(doc.tenant_id))
        assert tenant is not None
        upload = factories.make_upload(
            session, tenant, tmp_path / "storage", "rows.csv", csv.encode()
        )
    assert import_rows(pipeline, doc, str(upload.id)) == "imported 2 segment(s)"
    rows = seg.segment_rows(doc.document_id)
    assert [(r.content, r.answer) for r in rows] == [
        ("What, exactly?", "It is a test."),
        ("Why?", "Because."),
    ]


@pytest.mark.parametrize("form", seg.FORMS)
def test_disable_then_enable_follow_the_segment(
    pipeline: Pipeline, form: IndexStructureType
) -> None:
    doc, rows = imported(pipeline, form)
    first, other = rows[0], rows[1]
    before = vectors_per_segment(doc)

    seg.set_enabled(first.id, False)
    assert run(toggle.disable_segments, pipeline, [str(first.id)]) == {str(first.id): "disabled"}
    after = vectors_per_segment(doc)
    assert str(first.index_node_id) not in after
    assert after[str(other.index_node_id)] == before[str(other.index_node_id)]
    assert str(first.index_node_id) not in seg.keyword_nodes(doc)
    if form is PARENT_CHILD:
        assert seg.child_count(doc.document_id) == 6, "child chunk rows stay"

    seg.set_enabled(first.id, True)
    assert run(toggle.enable_segments, pipeline, [str(first.id)]) == {str(first.id): "enabled"}
    assert vectors_per_segment(doc) == before
    assert str(first.index_node_id) in seg.keyword_nodes(doc)


def test_current_state_wins_over_the_request(pipeline: Pipeline) -> None:
    doc, rows = imported(pipeline, PARENT_CHILD)
    first, second = rows[0], rows[1]
    before = vectors_per_segment(doc)

    seg.set_enabled(first.id, False)
    seg.set_enabled(first.id, True)  # re-enabled before the disable job runs
    outcome = run(toggle.disable_segments, pipeline, [str(first.id)])
    assert outcome[str(first.id)].startswith("skipped")
    assert vectors_per_segment(doc) == before

    seg.set_enabled(second.id, False)
    run(toggle.disable_segments, pipeline, [str(second.id)])
    outcome = run(toggle.enable_segments, pipeline, [str(second.id)])  # disabled again
    assert outcome[str(second.id)].startswith("skipped")
    assert str(second.index_node_id) not in vectors_per_segment(doc)


def test_batch_toggles_act_per_segment(pipeline: Pipeline) -> None:
    doc, rows = imported(pipeline, IndexStructureType.QA_INDEX)
    ids = [str(r.id) for r in rows]
    for row in rows[:2]:
        seg.set_enabled(row.id, False)
    outcome = run(toggle.disable_segments, pipeline, ids, doc.document_id)
    assert [outcome[i] for i in ids][:2] == ["disabled", "disabled"]
    assert set(vectors_per_segment(doc)) == {str(rows[2].index_node_id)}

    seg.set_enabled(rows[0].id, True)
    outcome = run(toggle.enable_segments, pipeline, ids, doc.document_id)
    assert outcome[ids[0]] == outcome[ids[2]] == "enabled" and outcome[ids[1]] != "enabled"
    assert set(vectors_per_segment(doc)) == {str(rows[0].index_node_id), str(rows[2].index_node_id)}


def test_a_disabled_document_is_left_alone(pipeline: Pipeline) -> None:
    doc, rows = imported(pipeline, IndexStructureType.PARAGRAPH_INDEX)
    with db.session_scope() as session:
        session.execute(sa.text("UPDATE documents SET archived = true WHERE id = :id"),
                        {"id": doc.document_id})  # fmt: skip
    seg.set_enabled(rows[0].id, False)
    outcome = run(toggle.disable_segments, pipeline, [str(rows[0].id)])
    assert outcome[str(rows[0].id)] == "skipped: document is archived"


@pytest.mark.parametrize("with_children", [False, True])
def test_deleting_a_parent_child_segment_leaves_no_child_vector(
    pipeline: Pipeline, with_children: bool
) -> None:
    doc, rows = imported(pipeline, PARENT_CHILD)
    doomed, kept = rows[0], rows[1:]
    children = [n for n, parent in seg.vectors_of(doc).items() if parent == doomed.index_node_id]
    with db.session_scope() as session:  # the caller's delete: child chunk rows cascade
        session.execute(sa.delete(DocumentSegment).where(DocumentSegment.id == doomed.id))
    node_ids = [str(doomed.index_node_id)]
    args = (node_ids, doc.dataset_id, doc.document_id, children if with_children else None)
    assert run(removal.delete_segments_from_index, pipeline, *args) == "deleted 2 vector(s)"
    assert run(removal.delete_segments_from_index, pipeline, *args) == "deleted 0 vector(s)"

    remaining = vectors_per_segment(doc)
    assert set(remaining) == {str(r.index_node_id) for r in kept}
    assert set(remaining.values()) == {2}
    assert seg.keyword_nodes(doc) == {str(r.index_node_id) for r in kept}


def test_a_segment_with_a_waiting_job_is_busy(pipeline: Pipeline) -> None:
    doc, rows = imported(pipeline, IndexStructureType.PARAGRAPH_INDEX)
    first, second, third = (str(r.id) for r in rows)
    with db.session_scope() as session:
        assert not busy.is_busy(session, first)
        disable_segment_from_index_task.apply_async(args=[first], session=session)
        enable_segments_to_index_task.apply_async(
            args=[[third], doc.dataset_id, doc.document_id], session=session
        )
    with db.session_scope() as session:
        assert busy.is_busy(session, first)
        assert not busy.is_busy(session, second)
        assert busy.is_busy(session, third)


class FailingEmbedder:
    provider, model, dimension = "test", "failing", 64

    def embed(self, texts: object) -> object:
        raise TransientError("embedding endpoint answered 503")


@pytest.mark.parametrize("retried", [False, True])
def test_a_failed_enable_leaves_dify_error_state_on_the_last_attempt(
    pipeline: Pipeline, retried: bool
) -> None:
    doc, rows = imported(pipeline, IndexStructureType.PARAGRAPH_INDEX)
    first = rows[0]
    seg.set_enabled(first.id, False)
    run(toggle.disable_segments, pipeline, [str(first.id)])
    seg.set_enabled(first.id, True)
    failing = dataclasses.replace(pipeline, embedder=FailingEmbedder())
    with pytest.raises(TransientError):
        run(toggle.enable_segments, failing, [str(first.id)], retrying=lambda exc: retried)

    (after,) = [r for r in seg.segment_rows(doc.document_id) if r.id == first.id]
    if retried:
        assert after.enabled and after.status.value == "completed" and after.error is None
    else:
        assert not after.enabled and after.status.value == "error"
        assert after.error == "embedding endpoint answered 503"
    assert str(first.index_node_id) not in vectors_per_segment(doc)


def test_the_index_of_a_live_segment_is_never_deleted(pipeline: Pipeline) -> None:
    doc, rows = imported(pipeline, PARENT_CHILD)
    before = seg.vectors_of(doc)
    node_ids = [str(rows[0].index_node_id)]  # deferred, but its deletion never committed
    with pytest.raises(removal.SegmentsStillExist, match="still exist"):
        run(removal.delete_segments_from_index, pipeline, node_ids, doc.dataset_id,
            doc.document_id)  # fmt: skip
    assert seg.vectors_of(doc) == before
    assert seg.keyword_nodes(doc) == {str(r.index_node_id) for r in rows}
