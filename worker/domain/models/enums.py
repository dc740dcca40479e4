"""Allowed values of the status and kind columns, spelled exactly as Dify stores them."""

from __future__ import annotations

import enum


class TenantStatus(enum.StrEnum):
    """``tenants.status``."""

    #: The workspace is in use.
    NORMAL = "normal"
    #: The workspace was archived and is read-only.
    ARCHIVE = "archive"


class AccountStatus(enum.StrEnum):
    """``accounts.status``."""

    #: Invited, the invitation not yet accepted.
    PENDING = "pending"
    #: Registered but the setup (name, password, language) is not finished.
    UNINITIALIZED = "uninitialized"
    #: May sign in.
    ACTIVE = "active"
    #: Blocked by an administrator.
    BANNED = "banned"
    #: Deleted by its owner; kept for the audit columns that point at it.
    CLOSED = "closed"


class TenantAccountRole(enum.StrEnum):
    """``tenant_account_joins.role``: what a member may do in the workspace."""

    #: Created the workspace; everything, including billing and deleting the workspace.
    OWNER = "owner"
    #: Manages members and settings.
    ADMIN = "admin"
    #: Builds apps and knowledge bases.
    EDITOR = "editor"
    #: Uses apps only.
    NORMAL = "normal"
    #: Manages knowledge bases only.
    DATASET_OPERATOR = "dataset_operator"


class CreatorUserRole(enum.StrEnum):
    """``*.created_by_role``: which table ``created_by`` points into."""

    #: ``created_by`` is an ``accounts.id`` (console user).
    ACCOUNT = "account"
    #: ``created_by`` is an ``end_users.id`` (web app or API caller).
    END_USER = "end_user"


class AutoUpgradeStrategySetting(enum.StrEnum):
    """``tenant_plugin_auto_upgrade_strategies.strategy_setting``: which versions to install."""

    #: Never upgrade automatically.
    DISABLED = "disabled"
    #: Only patch releases (same major and minor version).
    FIX_ONLY = "fix_only"
    #: Always the latest marketplace version.
    LATEST = "latest"


class AutoUpgradeMode(enum.StrEnum):
    """``tenant_plugin_auto_upgrade_strategies.upgrade_mode``: which plugins to upgrade."""

    #: Every installed marketplace plugin.
    ALL = "all"
    #: Only the plugins listed in ``include_plugins``.
    PARTIAL = "partial"
    #: Every plugin except those listed in ``exclude_plugins``.
    EXCLUDE = "exclude"


class AppStatus(enum.StrEnum):
    """``apps.status``; Dify defines a single value."""

    #: The app is live; annotation tasks refuse apps in any other state.
    NORMAL = "normal"


class IndexTechniqueType(enum.StrEnum):
    """``datasets.indexing_technique``."""

    #: Embeddings in a vector store.
    HIGH_QUALITY = "high_quality"
    #: Keyword table only, no embedding model.
    ECONOMY = "economy"


class IndexStructureType(enum.StrEnum):
    """``documents.doc_form`` and ``datasets.chunk_structure``: how a document is chunked."""

    #: Plain paragraphs.
    PARAGRAPH_INDEX = "text_model"
    #: Generated question/answer pairs (``document_segments.answer``).
    QA_INDEX = "qa_model"
    #: Parent segments with ``child_chunks``.
    PARENT_CHILD_INDEX = "hierarchical_model"


class DatasetRuntimeMode(enum.StrEnum):
    """``datasets.runtime_mode``."""

    #: Documents are indexed by the built-in indexing runner.
    GENERAL = "general"
    #: Documents are produced by a knowledge pipeline (``datasets.pipeline_id``).
    RAG_PIPELINE = "rag_pipeline"


class DatasetPermission(enum.StrEnum):
    """``datasets.permission``: who in the workspace sees the dataset."""

    #: Only its creator.
    ONLY_ME = "only_me"
    #: Every member of the workspace.
    ALL_TEAM_MEMBERS = "all_team_members"
    #: The members listed in Dify's ``dataset_permissions``.
    PARTIAL_MEMBERS = "partial_members"


class DataSourceType(enum.StrEnum):
    """``documents.data_source_type`` and ``datasets.data_source_type``."""

    #: A file in ``upload_files`` (``data_source_info.upload_file_id``).
    UPLOAD_FILE = "upload_file"
    #: A Notion page or database.
    NOTION_IMPORT = "notion_import"
    #: A page fetched by a website crawler (Firecrawl, Jina, WaterCrawl).
    WEBSITE_CRAWL = "website_crawl"
    #: A local file fed through a knowledge pipeline.
    LOCAL_FILE = "local_file"
    #: An online document fed through a knowledge pipeline.
    ONLINE_DOCUMENT = "online_document"
    #: A file from an online drive fed through a knowledge pipeline.
    ONLINE_DRIVE = "online_drive"


class DocumentCreatedFrom(enum.StrEnum):
    """``documents.created_from``."""

    #: The console.
    WEB = "web"
    #: The knowledge service API.
    API = "api"
    #: A published knowledge pipeline.
    RAG_PIPELINE = "rag-pipeline"


class IndexingStatus(enum.StrEnum):
    """``documents.indexing_status``, in the order the indexing runner goes through them."""

    #: Created or reset; waiting for an indexing job.
    WAITING = "waiting"
    #: A job took it and is extracting text.
    PARSING = "parsing"
    #: Recognised like ``parsing``; nothing in Dify sets it.
    CLEANING = "cleaning"
    #: Text extracted; being split into segments.
    SPLITTING = "splitting"
    #: Segments saved; embeddings and keywords being written.
    INDEXING = "indexing"
    #: Never written by Dify: pausing is the ``is_paused`` flag.
    PAUSED = "paused"
    #: Every segment is indexed.
    COMPLETED = "completed"
    #: Indexing failed; ``documents.error`` says why.
    ERROR = "error"


#: Statuses of a document whose indexing started or is due and has not finished. The recovery sweep
#: looks for these, and ``ix_documents_indexing_status_unfinished`` indexes exactly these.
UNFINISHED_INDEXING_STATUSES: tuple[IndexingStatus, ...] = (
    IndexingStatus.WAITING,
    IndexingStatus.PARSING,
    IndexingStatus.CLEANING,
    IndexingStatus.SPLITTING,
    IndexingStatus.INDEXING,
)


class SegmentStatus(enum.StrEnum):
    """``document_segments.status``."""

    #: Saved, not yet sent to the index.
    WAITING = "waiting"
    #: Being embedded and written to the index.
    INDEXING = "indexing"
    #: In the index.
    COMPLETED = "completed"
    #: Indexing failed; ``document_segments.error`` says why.
    ERROR = "error"
    #: Its document was paused.
    PAUSED = "paused"
    #: Being re-split after a change of the process rule.
    RE_SEGMENT = "re_segment"


class SegmentType(enum.StrEnum):
    """``child_chunks.type``: where a child chunk came from."""

    #: Produced by the splitter.
    AUTOMATIC = "automatic"
    #: Written or edited by a user.
    CUSTOMIZED = "customized"


class ProcessRuleMode(enum.StrEnum):
    """``dataset_process_rules.mode``."""

    #: Dify's default cleaning and segmentation.
    AUTOMATIC = "automatic"
    #: User-chosen pre-processing and segmentation in ``rules``.
    CUSTOM = "custom"
    #: Parent/child segmentation (``hierarchical_model`` documents).
    HIERARCHICAL = "hierarchical"


class CollectionBindingType(enum.StrEnum):
    """``dataset_collection_bindings.type``: what a shared vector collection holds."""

    #: Dataset segments.
    DATASET = "dataset"
    #: App annotation replies.
    ANNOTATION = "annotation"


class DatasetMetadataType(enum.StrEnum):
    """``dataset_metadatas.type``: the value type of a metadata field."""

    #: Free text.
    STRING = "string"
    #: A number.
    NUMBER = "number"
    #: A timestamp.
    TIME = "time"


class DatasetQuerySource(enum.StrEnum):
    """``dataset_queries.source``: where a retrieval query came from."""

    #: The console's retrieval test.
    HIT_TESTING = "hit_testing"
    #: An app run (``dataset_queries.source_app_id``).
    APP = "app"
