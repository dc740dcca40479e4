"""SQLAlchemy 2 models of the Dify tables the task layer reads and writes."""

from __future__ import annotations

from worker.domain.models.account import (
    Account,
    Tenant,
    TenantAccountJoin,
    TenantPluginAutoUpgradeStrategy,
)
from worker.domain.models.app import (
    App,
    AppAnnotationHitHistory,
    AppAnnotationSetting,
    MessageAnnotation,
)
from worker.domain.models.base import Base
from worker.domain.models.dataset import (
    AppDatasetJoin,
    Dataset,
    DatasetAutoDisableLog,
    DatasetCollectionBinding,
    DatasetMetadata,
    DatasetMetadataBinding,
    DatasetProcessRule,
    DatasetQuery,
    Embedding,
)
from worker.domain.models.document import ChildChunk, Document, DocumentSegment
from worker.domain.models.enums import (
    UNFINISHED_INDEXING_STATUSES,
    AccountStatus,
    AppStatus,
    AutoUpgradeMode,
    AutoUpgradeStrategySetting,
    CollectionBindingType,
    CreatorUserRole,
    DatasetMetadataType,
    DatasetPermission,
    DatasetQuerySource,
    DatasetRuntimeMode,
    DataSourceType,
    DocumentCreatedFrom,
    IndexingStatus,
    IndexStructureType,
    IndexTechniqueType,
    ProcessRuleMode,
    SegmentStatus,
    SegmentType,
    TenantAccountRole,
    TenantStatus,
)
from worker.domain.models.index import EmbeddingVector, KeywordEntry
from worker.domain.models.job import OutcomeStatus, TaskResult
from worker.domain.models.job_status import JobKind, JobState, JobStatus
from worker.domain.models.mail import DeliveryStatus, MailDelivery
from worker.domain.models.scheduler import SchedulerTick, TickOutcome
from worker.domain.models.trace import (
    FINAL_TRACE_STATUSES,
    QueueMonitorAlert,
    TraceAppConfig,
    TraceDelivery,
    TraceDeliveryStatus,
)
from worker.domain.models.upload import UploadFile

__all__ = [
    "FINAL_TRACE_STATUSES",
    "UNFINISHED_INDEXING_STATUSES",
    "Account",
    "AccountStatus",
    "App",
    "AppAnnotationHitHistory",
    "AppAnnotationSetting",
    "AppDatasetJoin",
    "AppStatus",
    "AutoUpgradeMode",
    "AutoUpgradeStrategySetting",
    "Base",
    "ChildChunk",
    "CollectionBindingType",
    "CreatorUserRole",
    "DataSourceType",
    "Dataset",
    "DatasetAutoDisableLog",
    "DatasetCollectionBinding",
    "DatasetMetadata",
    "DatasetMetadataBinding",
    "DatasetMetadataType",
    "DatasetPermission",
    "DatasetProcessRule",
    "DatasetQuery",
    "DatasetQuerySource",
    "DatasetRuntimeMode",
    "DeliveryStatus",
    "Document",
    "DocumentCreatedFrom",
    "DocumentSegment",
    "Embedding",
    "EmbeddingVector",
    "IndexStructureType",
    "IndexTechniqueType",
    "IndexingStatus",
    "JobKind",
    "JobState",
    "JobStatus",
    "KeywordEntry",
    "MailDelivery",
    "MessageAnnotation",
    "OutcomeStatus",
    "ProcessRuleMode",
    "QueueMonitorAlert",
    "SchedulerTick",
    "SegmentStatus",
    "SegmentType",
    "TaskResult",
    "Tenant",
    "TenantAccountJoin",
    "TenantAccountRole",
    "TenantPluginAutoUpgradeStrategy",
    "TenantStatus",
    "TickOutcome",
    "TraceAppConfig",
    "TraceDelivery",
    "TraceDeliveryStatus",
    "UploadFile",
]
