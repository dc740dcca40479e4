"""Dify's ``clean_unused_datasets_task``: disable the documents of datasets nobody used lately.

A dataset is unused when it was created before the cutoff, has enabled, unarchived, completed
documents all last updated before it, and no retrieval query since. Datasets are scanned by
keyset pagination on their id (Dify re-read page 1 for ever when it skipped one), and each is
handled in one transaction that re-checks it under its row lock, writes the auto-disable logs
(pass 1 only), deletes its vectors and keyword rows (they live in this database) and disables
its documents: all of it or none.

Pass 1 covers every workspace (``PLAN_SANDBOX_CLEAN_DAY_SETTING`` days, with logs that the
Monday mail reports); pass 2 (``PLAN_PRO_CLEAN_DAY_SETTING`` days, no logs) only sandbox
workspaces, and only when billing is configured: a self-hosted install has no plans.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy import orm

from worker.domain.models import (
    Dataset,
    DatasetAutoDisableLog,
    DatasetQuery,
    Document,
    IndexingStatus,
    Tenant,
)
from worker.domain.pipeline import Pipeline
from worker.domain.uow import UnitOfWork
from worker.domain.vectors import collection_name

logger = logging.getLogger(__name__)

#: Datasets read per page.
PAGE_SIZE = 50
#: Dify's plan of the free tier.
SANDBOX = "sandbox"


@dataclass(frozen=True, kw_only=True)
class Pass:
    """One pass over the datasets."""

    days: int
    #: Write ``dataset_auto_disable_logs`` (the Monday mail reports them).
    write_logs: bool
    #: Only workspaces on this plan (``tenants.plan``), or every workspace.
    plan: str | None = None


def clean(
    uow: UnitOfWork,
    pipeline: Pipeline,
    passes: list[Pass],
    *,
    now: datetime | None = None,
    page_size: int = PAGE_SIZE,
) -> dict[str, int]:
    """Run ``passes`` in order; return the datasets and documents disabled."""
    now = now or datetime.now(UTC)
    totals = {"datasets": 0, "documents": 0}
    for one in passes:
        cutoff = now - timedelta(days=one.days)
        after = uuid.UUID(int=0)
        while True:
            with uow.step() as session:
                page = list(session.scalars(_candidates(cutoff, one.plan, after, page_size)))
            if not page:
                break
            after = page[-1]
            for dataset_id in page:
                with uow.step() as session:
                    disabled = _disable(session, pipeline, dataset_id, cutoff, one, now)
                if disabled:
                    totals["datasets"] += 1
                    totals["documents"] += disabled
    logger.info(
        "unused datasets: %d dataset(s), %d document(s) disabled",
        totals["datasets"], totals["documents"],
        extra={"action": "unused_datasets_cleaned", **totals},
    )  # fmt: skip
    return totals


def _live(dataset_id: orm.Mapped[uuid.UUID] | uuid.UUID) -> list[sa.ColumnElement[bool]]:
    """Enabled, unarchived, completed documents of a dataset (the ones a search can find)."""
    return [
        Document.dataset_id == dataset_id,
        Document.enabled.is_(True),
        Document.archived.is_(False),
        Document.indexing_status == IndexingStatus.COMPLETED,
    ]


def _unused(cutoff: datetime) -> list[sa.ColumnElement[bool]]:
    documents = sa.select(1).where(*_live(Dataset.id))
    return [
        Dataset.created_at < cutoff,
        documents.where(Document.updated_at < cutoff).exists(),
        ~documents.where(Document.updated_at >= cutoff).exists(),
        ~sa.select(1)
        .where(DatasetQuery.dataset_id == Dataset.id, DatasetQuery.created_at >= cutoff)
        .exists(),
    ]


def _candidates(
    cutoff: datetime, plan: str | None, after: uuid.UUID, limit: int
) -> sa.Select[uuid.UUID]:
    query = sa.select(Dataset.id).where(Dataset.id > after, *_unused(cutoff))
    if plan is not None:
        query = query.join(Tenant, Tenant.id == Dataset.tenant_id).where(Tenant.plan == plan)
    return query.order_by(Dataset.id).limit(limit)


def _disable(
    session: orm.Session,
    pipeline: Pipeline,
    dataset_id: uuid.UUID,
    cutoff: datetime,
    one: Pass,
    now: datetime,
) -> int:
    dataset = session.scalars(
        sa.select(Dataset).where(Dataset.id == dataset_id, *_unused(cutoff)).with_for_update()
    ).one_or_none()
    if dataset is None:
        return 0  # used (or deleted) since the page was read
    documents = list(
        session.scalars(sa.select(Document).where(*_live(dataset_id)).with_for_update())
    )
    if one.write_logs:
        session.add_all(
            DatasetAutoDisableLog(tenant_id=d.tenant_id, dataset_id=d.dataset_id, document_id=d.id)
            for d in documents
        )
    pipeline.vectors.delete_collection(session, collection_name(str(dataset_id)))
    pipeline.keywords.delete_dataset(session, str(dataset_id))
    for document in documents:
        document.enabled = False
        document.disabled_at = now
    logger.info(
        "dataset %s unused since %s: %d document(s) disabled, its index removed",
        dataset_id, cutoff.date().isoformat(), len(documents),
        extra={"action": "dataset_auto_disabled", "dataset_id": str(dataset_id)},
    )  # fmt: skip
    return len(documents)
