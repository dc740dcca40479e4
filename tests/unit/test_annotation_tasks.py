"""The annotation tasks: Dify's names and arguments, the annotation queue, the per-app locks."""

from __future__ import annotations

import inspect

import pytest

from worker import queues
from worker.domain.annotation import imports
from worker.jobs import CeleryTask
from worker.tasks import annotation

DIFY_SIGNATURES = {
    "add_annotation_to_index_task": [
        "annotation_id", "question", "tenant_id", "app_id", "collection_binding_id",
    ],
    "update_annotation_to_index_task": [
        "annotation_id", "question", "tenant_id", "app_id", "collection_binding_id",
    ],
    "delete_annotation_index_task": [
        "annotation_id", "app_id", "tenant_id", "collection_binding_id",
    ],
    "enable_annotation_reply_task": [
        "job_id", "app_id", "user_id", "tenant_id", "score_threshold",
        "embedding_provider_name", "embedding_model_name",
    ],
    "disable_annotation_reply_task": ["job_id", "app_id", "tenant_id"],
    "batch_import_annotations_task": ["job_id", "content_list", "app_id", "tenant_id", "user_id"],
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(DIFY_SIGNATURES))
def test_each_task_has_difys_arguments_the_annotation_queue_and_the_app_lock(name: str) -> None:
    task = getattr(annotation, name)

    assert isinstance(task, CeleryTask)
    assert list(task.signature.parameters) == DIFY_SIGNATURES[name]
    assert task.queue == queues.ANNOTATION
    arguments = {p: f"<{p}>" for p in DIFY_SIGNATURES[name]}
    options = task.defer_options(arguments)
    assert options["lock"] == "app:<app_id>:annotation"
    reply = name in ("enable_annotation_reply_task", "disable_annotation_reply_task")
    assert options["queueing_lock"] == ("app:<app_id>:annotation_reply" if reply else None)
    assert task.retry_policy.max_retries == 3


def test_positional_celery_calls_bind_like_difys() -> None:
    bound = annotation.enable_annotation_reply_task.bind_arguments(
        ("job", "app", "user", "tenant", 0.9, "openai", "text-embedding-3-small")
    )

    assert bound["score_threshold"] == 0.9
    assert bound["embedding_model_name"] == "text-embedding-3-small"


def test_import_ids_derive_from_job_and_row() -> None:
    rows = [{"question": "Q?", "answer": "A."}, {"question": "R?", "answer": ""}]

    first = imports.validate("job-1", rows)
    again = imports.validate("job-1", rows)
    other = imports.validate("job-2", rows)

    assert [i.id for i in first] == [i.id for i in again]
    assert {i.id for i in first}.isdisjoint(i.id for i in other)
    assert len({i.id for i in first}) == 2


def test_import_rejects_a_list_that_is_not_one() -> None:
    with pytest.raises(imports.InvalidImportItem, match="must be a list"):
        imports.validate("job", {"question": "Q?", "answer": "A."})
