"""Job statuses the console polls by Dify's job id, in place of Dify's Redis keys with a TTL.

Dify's console starts some jobs (annotation reply enable/disable, annotation and segment CSV
imports) with a ``job_id`` it generates, and polls ``..._job_{job_id}`` keys in Redis for
``waiting`` / ``completed`` / ``error``. Here each such job has one row, written in the same
transactions as the work: ``waiting`` with the caller's deferral, ``completed`` with the job's
last transaction, ``error`` in its failure transaction. See :mod:`worker.domain.job_status`.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from worker.domain.models.base import Base, created_at, str_enum, updated_at


class JobState(enum.StrEnum):
    """Where a polled job stands, in Dify's words (the console compares these strings)."""

    #: Deferred, not started yet.
    WAITING = "waiting"
    #: Running, or waiting for a retry after a transient failure (``error`` says which).
    PROCESSING = "processing"
    #: Done; its writes committed with this status.
    COMPLETED = "completed"
    #: Failed for good; ``error`` says why.
    ERROR = "error"


class JobKind(enum.StrEnum):
    """Which of Dify's polled jobs a row tracks (part of the key: Dify's keys differ by kind)."""

    #: ``enable_annotation_reply_task`` (Dify's ``enable_app_annotation_job_{job_id}``).
    ANNOTATION_REPLY_ENABLE = "annotation_reply_enable"
    #: ``disable_annotation_reply_task`` (``disable_app_annotation_job_{job_id}``).
    ANNOTATION_REPLY_DISABLE = "annotation_reply_disable"
    #: ``batch_import_annotations_task`` (``app_annotation_batch_import_{job_id}``).
    ANNOTATION_BATCH_IMPORT = "annotation_batch_import"
    #: ``batch_create_segment_to_index_task`` (``segment_batch_import_{job_id}``).
    SEGMENT_BATCH_IMPORT = "segment_batch_import"


class JobStatus(Base):
    """The status of one polled job, keyed by Dify's job id and its kind.

    No foreign keys: ``procrastinate_job_id`` names a job that may be pruned once finished, and a
    status stays readable after its app, document or tenant is deleted (retention removes it).
    """

    __tablename__ = "job_statuses"
    __table_args__ = (sa.Index("ix_job_statuses_finished_at", "finished_at"),)

    #: Dify's job id (a uuid the caller generates and the console polls).
    job_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    status: Mapped[JobState] = mapped_column(str_enum(JobState, name="status"))
    #: Why it failed (``error``), or why its last attempt failed (``processing``, to be retried).
    error: Mapped[str | None] = mapped_column(sa.Text)
    tenant_id: Mapped[uuid.UUID | None] = mapped_column()
    #: What the job works on: the app (annotation kinds) or the document (segment import).
    target_id: Mapped[uuid.UUID | None] = mapped_column()
    #: The procrastinate job running it; ``NULL`` when the job was deferred without the helper.
    procrastinate_job_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()
    finished_at: Mapped[datetime | None] = mapped_column()
