"""Task entry points, one module per Dify area; thin wrappers over ``worker.domain``.

Every task is importable from here by its Dify name, so ported code changes only its imports:
``from worker.tasks import document_indexing_task``.
"""

from __future__ import annotations

from worker.tasks.indexing import (
    add_document_to_index_task,
    deal_dataset_vector_index_task,
    document_indexing_sync_task,
    document_indexing_task,
    document_indexing_update_task,
    duplicate_document_indexing_task,
    normal_document_indexing_task,
    priority_document_indexing_task,
    recover_document_indexing_task,
    remove_document_from_index_task,
    retry_document_indexing_task,
    sync_website_document_indexing_task,
)

__all__ = [
    "add_document_to_index_task",
    "deal_dataset_vector_index_task",
    "document_indexing_sync_task",
    "document_indexing_task",
    "document_indexing_update_task",
    "duplicate_document_indexing_task",
    "normal_document_indexing_task",
    "priority_document_indexing_task",
    "recover_document_indexing_task",
    "remove_document_from_index_task",
    "retry_document_indexing_task",
    "sync_website_document_indexing_task",
]
