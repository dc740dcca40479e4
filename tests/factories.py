"""Rows with sensible defaults for tests: ``make_x(session, **overrides)``."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import orm

from worker.domain.models import (
    Dataset,
    DatasetProcessRule,
    DataSourceType,
    Document,
    DocumentCreatedFrom,
    IndexStructureType,
    IndexTechniqueType,
    ProcessRuleMode,
    Tenant,
    UploadFile,
)
from worker.domain.storage import LocalStorage

USER = uuid.UUID("00000000-0000-4000-8000-000000000001")


def make_tenant(session: orm.Session, **overrides: Any) -> Tenant:
    tenant = Tenant(**{"name": "Acme", **overrides})
    session.add(tenant)
    session.flush()
    return tenant


def make_dataset(session: orm.Session, tenant: Tenant, **overrides: Any) -> Dataset:
    values: dict[str, Any] = {
        "tenant_id": tenant.id,
        "name": "Handbook",
        "indexing_technique": IndexTechniqueType.HIGH_QUALITY,
        "embedding_model": "hashing-256",
        "embedding_model_provider": "local",
        "created_by": USER,
    }
    dataset = Dataset(**{**values, **overrides})
    session.add(dataset)
    session.flush()
    return dataset


def make_rule(
    session: orm.Session, dataset: Dataset, mode: ProcessRuleMode, rules: dict[str, Any] | None
) -> DatasetProcessRule:
    rule = DatasetProcessRule(dataset_id=dataset.id, mode=mode, rules=rules, created_by=USER)
    session.add(rule)
    session.flush()
    return rule


def make_upload(
    session: orm.Session, tenant: Tenant, storage_root: Path, name: str, data: bytes
) -> UploadFile:
    extension = name.rsplit(".", 1)[-1]
    key = f"upload_files/{tenant.id}/{uuid.uuid4()}.{extension}"
    LocalStorage(storage_root).save(key, data)
    upload = UploadFile(
        tenant_id=tenant.id,
        storage_type="local",
        key=key,
        name=name,
        size=len(data),
        extension=extension,
        created_by=USER,
    )
    session.add(upload)
    session.flush()
    return upload


def make_document(
    session: orm.Session, dataset: Dataset, *, position: int = 1, **overrides: Any
) -> Document:
    values: dict[str, Any] = {
        "tenant_id": dataset.tenant_id,
        "dataset_id": dataset.id,
        "position": position,
        "data_source_type": DataSourceType.UPLOAD_FILE,
        "data_source_info": {},
        "batch": "batch-1",
        "name": f"document {position}",
        "created_from": DocumentCreatedFrom.WEB,
        "created_by": USER,
        "doc_form": IndexStructureType.PARAGRAPH_INDEX,
    }
    document = Document(**{**values, **overrides})
    session.add(document)
    session.flush()
    return document


def make_upload_document(
    session: orm.Session,
    dataset: Dataset,
    storage_root: Path,
    name: str,
    data: bytes,
    *,
    position: int = 1,
    **overrides: Any,
) -> Document:
    tenant = session.get(Tenant, dataset.tenant_id)
    assert tenant is not None
    upload = make_upload(session, tenant, storage_root, name, data)
    return make_document(
        session,
        dataset,
        position=position,
        name=name,
        data_source_info={"upload_file_id": str(upload.id)},
        **overrides,
    )
