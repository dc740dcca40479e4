"""The indexing pipeline's stages that touch no database: read a document's source, then cut
its text into segments (and child chunks) with stable node ids.

Node ids derive from the document id, the position and the content hash, so re-running a stage
after a crash produces the same ids: vector upserts replace instead of duplicating.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from worker.domain import chunking
from worker.domain.errors import PermanentError
from worker.domain.extract import extract_file
from worker.domain.keywords import KeywordIndex
from worker.domain.models import DataSourceType, IndexStructureType, IndexTechniqueType
from worker.domain.notion import NotionClient
from worker.domain.ports import Embedder, Storage
from worker.domain.vectors import PgVectorStore
from worker.domain.website import WebsiteFetcher

logger = logging.getLogger(__name__)

#: Namespace of the uuid5 node ids of segments and child chunks.
NODE_NAMESPACE = uuid.UUID("6f6d1c8e-4c1b-4f5e-9a49-0c1d2e3f4a5b")


@dataclass(frozen=True, kw_only=True)
class Pipeline:
    """Adapters the indexing services use, built once by the runtime."""

    storage: Storage
    embedder: Embedder
    vectors: PgVectorStore
    keywords: KeywordIndex
    website: Callable[[], WebsiteFetcher]
    notion: Callable[[], NotionClient] | None
    #: Segments embedded and committed per step.
    batch_size: int


@dataclass(frozen=True, kw_only=True)
class Source:
    """What the pipeline needs of a document, read in one short transaction."""

    document_id: uuid.UUID
    dataset_id: uuid.UUID
    tenant_id: uuid.UUID
    created_by: uuid.UUID
    name: str
    data_source_type: DataSourceType
    data_source_info: dict[str, Any]
    doc_form: IndexStructureType
    technique: IndexTechniqueType
    rule: chunking.ProcessRule
    #: ``key`` and ``extension`` of the uploaded file, for ``upload_file`` documents.
    upload: tuple[str, str] | None = None


@dataclass(frozen=True, kw_only=True)
class PlannedChild:
    """A child chunk to insert under its parent segment."""

    position: int
    content: str
    node_id: str
    node_hash: str


@dataclass(frozen=True, kw_only=True)
class PlannedSegment:
    """A segment to insert, with its child chunks for parent-child documents."""

    position: int
    content: str
    node_id: str
    node_hash: str
    tokens: int
    children: tuple[PlannedChild, ...] = ()


def read_text(pipeline: Pipeline, source: Source) -> str:
    """The document's raw text, from storage, Notion or the web.

    Raises
    ------
    PermanentError
        Unsupported source, missing file, missing Notion configuration, unreadable content.
    TransientError
        A remote source failed in a way that may pass.
    """
    if source.data_source_type is DataSourceType.UPLOAD_FILE:
        if source.upload is None:
            raise PermanentError(f"document {source.document_id} has no upload_file to read")
        key, extension = source.upload
        return extract_file(pipeline.storage.load(key), extension=extension, name=source.name)
    if source.data_source_type is DataSourceType.NOTION_IMPORT:
        return _read_notion(pipeline, source)
    if source.data_source_type is DataSourceType.WEBSITE_CRAWL:
        url = source.data_source_info.get("url")
        if not url:
            raise PermanentError(f"document {source.document_id} has no url to crawl")
        fetcher = pipeline.website()
        try:
            only_main = bool(source.data_source_info.get("only_main_content", True))
            return fetcher.fetch(str(url), only_main_content=only_main)
        finally:
            fetcher.close()
    raise PermanentError(
        f"document {source.document_id}: data source {source.data_source_type} is not supported"
    )


def _read_notion(pipeline: Pipeline, source: Source) -> str:
    page_id, page_type = notion_page(source)
    if pipeline.notion is None:
        raise PermanentError(
            f"document {source.document_id} comes from Notion, but NOTION_INTEGRATION_TOKEN "
            "is not set"
        )
    client = pipeline.notion()
    try:
        return client.page_text(page_id, page_type)
    finally:
        client.close()


def notion_page(source: Source) -> tuple[str, str]:
    """The Notion page id and type (``page`` or ``database``) of a Notion document."""
    info = source.data_source_info
    page_id = info.get("notion_page_id")
    if not page_id:
        raise PermanentError(f"document {source.document_id} has no notion_page_id")
    return str(page_id), str(info.get("type") or "page")


def plan_segments(source: Source, text: str) -> list[PlannedSegment]:
    """Clean and split ``text`` by the document's process rule into segments to insert."""
    cleaned = chunking.clean(text, source.rule)
    if source.doc_form is IndexStructureType.PARENT_CHILD_INDEX:
        parents = chunking.split_parent_child(cleaned, source.rule)
        return [
            _planned(source, position, parent.content, parent.children)
            for position, parent in enumerate(parents, start=1)
        ]
    return [
        _planned(source, position, content, ())
        for position, content in enumerate(chunking.split_paragraphs(cleaned, source.rule), 1)
    ]


def _planned(
    source: Source, position: int, content: str, children: tuple[str, ...]
) -> PlannedSegment:
    node_hash = chunking.content_hash(content)
    node_id = str(uuid.uuid5(NODE_NAMESPACE, f"{source.document_id}:{position}:{node_hash}"))
    return PlannedSegment(
        position=position,
        content=content,
        node_id=node_id,
        node_hash=node_hash,
        tokens=chunking.count_tokens(content),
        children=tuple(
            PlannedChild(
                position=child_position,
                content=child,
                node_id=str(
                    uuid.uuid5(
                        NODE_NAMESPACE,
                        f"{node_id}:{child_position}:{chunking.content_hash(child)}",
                    )
                ),
                node_hash=chunking.content_hash(child),
            )
            for child_position, child in enumerate(children, start=1)
        ),
    )
