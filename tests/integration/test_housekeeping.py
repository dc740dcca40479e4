"""Dify's periodic maintenance on real rows: embedding cache, unused datasets, the Monday
notice (through a real SMTP server) and the queue monitor."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests import factories, inprocess
from tests.smtp import SMTPServer
from tests.uow import run
from worker import db, runtime
from worker.config import Settings
from worker.domain.housekeeping import embedding_cache, unused_datasets
from worker.domain.models import (
    Account,
    CreatorUserRole,
    DatasetAutoDisableLog,
    DatasetQuery,
    DatasetQuerySource,
    Document,
    IndexingStatus,
    QueueMonitorAlert,
    TenantAccountJoin,
    TenantAccountRole,
)
from worker.domain.vectors import collection_name
from worker.tasks import mail_clean_document_notify_task, queue_monitor_task

NOW = datetime.now(UTC)
OLD = NOW - timedelta(days=40)
TEN_DAYS = NOW - timedelta(days=10)


@pytest.fixture
def smtp() -> Iterator[SMTPServer]:
    with SMTPServer() as server:
        yield server


@pytest.fixture(autouse=True)
def task_layer(database_url: str, smtp: SMTPServer, tmp_path: Path) -> Iterator[None]:
    settings = Settings(
        mail_type="smtp",
        smtp_server="127.0.0.1",
        smtp_port=smtp.port,
        mail_default_send_from="Dify <no-reply@dify.example>",
        console_web_url="https://console.dify.example",
        storage_local_path=tmp_path,
        queue_monitor_threshold=3,
        queue_monitor_alert_emails=("ops@example.com",),
    )
    runtime.setup(database_url, settings=settings)
    yield
    runtime.teardown()


def sql(statement: str, **params: object) -> list[sa.Row[tuple[object, ...]]]:
    with db.session_scope(new=True) as session:
        result = session.execute(sa.text(statement), params)
        return list(result.all()) if result.returns_rows else []


def test_the_embedding_cache_is_cleaned_in_batches_of_old_rows_only() -> None:
    sql(
        "INSERT INTO embeddings (hash, embedding, created_at, provider_name)"
        " SELECT md5(g::text), '\\x00', :at, 'p' FROM generate_series(1, 2500) g",
        at=OLD,
    )
    sql(
        "INSERT INTO embeddings (hash, embedding, provider_name)"
        " SELECT 'new' || g, '\\x00', 'p' FROM generate_series(1, 3) g"
    )

    deleted = run(embedding_cache.clean, before=NOW - timedelta(days=30), batch_size=1000)

    assert deleted == 2500
    assert sql("SELECT count(*) FROM embeddings")[0][0] == 3


def make_dataset(*, plan: str = "basic", updated: datetime = OLD, query: bool = False) -> str:
    with db.session_scope() as session:
        tenant = factories.make_tenant(session, plan=plan)
        dataset = factories.make_dataset(session, tenant)
        for position in (1, 2):
            factories.make_document(
                session, dataset, position=position, indexing_status=IndexingStatus.COMPLETED
            )
        factories.make_document(session, dataset, position=3, enabled=False)
        if query:
            session.add(
                DatasetQuery(
                    dataset_id=dataset.id,
                    content="q",
                    source=DatasetQuerySource.APP,
                    created_by_role=CreatorUserRole.ACCOUNT,
                    created_by=factories.USER,
                )
            )
        dataset_id = str(dataset.id)
    sql("UPDATE datasets SET created_at = :at WHERE id = :d", at=OLD, d=dataset_id)
    sql("UPDATE documents SET updated_at = :at WHERE dataset_id = :d", at=updated, d=dataset_id)
    sql(
        "INSERT INTO embedding_vectors (collection, node_id, content, metadata, dimension,"
        " embedding) VALUES (:c, 'n1', 'x', '{}', 3, '[1,2,3]')",
        c=collection_name(dataset_id),
    )
    return dataset_id


def enabled_documents(dataset_id: str) -> int:
    return int(
        sql("SELECT count(*) FROM documents WHERE dataset_id = :d AND enabled", d=dataset_id)[0][0]
    )


def vectors(dataset_id: str) -> int:
    return int(
        sql(
            "SELECT count(*) FROM embedding_vectors WHERE collection = :c",
            c=collection_name(dataset_id),
        )[0][0]
    )


def test_unused_datasets_skip_the_used_ones_finish_and_disable_exactly_the_eligible() -> None:
    queried = make_dataset(query=True)  # a recent retrieval: skipped
    unused = make_dataset()
    recent = make_dataset(updated=NOW - timedelta(days=1))
    sandbox = make_dataset(plan="sandbox", updated=TEN_DAYS)  # pass 2 only
    paying = make_dataset(updated=TEN_DAYS)
    passes = [
        unused_datasets.Pass(days=30, write_logs=True),
        unused_datasets.Pass(days=7, write_logs=False, plan=unused_datasets.SANDBOX),
    ]

    totals = run(unused_datasets.clean, runtime.current().pipeline, passes, page_size=1)

    assert totals == {"datasets": 2, "documents": 4}
    assert {d: enabled_documents(d) for d in (queried, unused, recent, sandbox, paying)} == {
        queried: 2,
        unused: 0,
        recent: 2,
        sandbox: 0,
        paying: 2,
    }
    assert {d: vectors(d) for d in (queried, unused, sandbox)} == {
        queried: 1,
        unused: 0,
        sandbox: 0,
    }
    logs = sql("SELECT dataset_id::text, notified FROM dataset_auto_disable_logs")
    assert sorted(logs) == [(unused, False), (unused, False)]
    assert run(unused_datasets.clean, runtime.current().pipeline, passes) == {
        "datasets": 0,
        "documents": 0,
    }


def owned_logs(name: str, email: str, *, language: str = "en-US", owner: bool = True) -> str:
    dataset_id = make_dataset()
    with db.session_scope() as session:
        tenant_id = sql("SELECT tenant_id FROM datasets WHERE id = :d", d=dataset_id)[0][0]
        for document in session.scalars(
            sa.select(Document).where(
                Document.dataset_id == uuid.UUID(dataset_id), Document.enabled
            )
        ):
            session.add(
                DatasetAutoDisableLog(
                    tenant_id=tenant_id, dataset_id=document.dataset_id, document_id=document.id
                )
            )
        if owner:
            account = Account(name=name, email=email, interface_language=language)
            session.add(account)
            session.flush()
            session.add(
                TenantAccountJoin(
                    tenant_id=tenant_id, account_id=account.id, role=TenantAccountRole.OWNER
                )
            )
    return str(tenant_id)


def test_the_notice_reaches_each_owner_once_and_one_failure_stops_no_other(
    smtp: SMTPServer,
) -> None:
    ada = owned_logs("Ada", "ada@example.com")
    bo = owned_logs("Bo", "bo@example.com", language="zh-Hans")
    orphan = owned_logs("-", "-", owner=False)

    mail_clean_document_notify_task()
    inprocess.drain(["mail"])

    assert sorted(m.recipients[0] for m in smtp.received) == ["ada@example.com", "bo@example.com"]
    english = next(m for m in smtp.received if m.recipients == ["ada@example.com"])
    assert "Knowledge base Handbook: 2 documents" in english.html
    assert "https://console.dify.example/datasets" in english.html
    chinese = next(m for m in smtp.received if m.recipients == ["bo@example.com"])
    assert "知识库" in chinese.subject
    notified = dict(
        sql(
            "SELECT tenant_id::text, bool_and(notified)"
            " FROM dataset_auto_disable_logs GROUP BY tenant_id"
        )
    )
    assert notified == {ada: True, bo: True, orphan: False}
    failed = sql(
        "SELECT status::text FROM procrastinate_jobs"
        " WHERE task_name = 'housekeeping.clean_document_notify_tenant'"
        " AND args->>'tenant_id' = :t",
        t=orphan,
    )
    assert failed == [("failed",)]

    mail_clean_document_notify_task()
    inprocess.drain(["mail"])
    assert len(smtp.received) == 2, "a workspace is notified once"


def defer_fake_jobs(count: int) -> None:
    sql(
        "INSERT INTO procrastinate_jobs (queue_name, task_name, args, status)"
        " SELECT 'dataset', 'tests.nothing', '{}', 'todo' FROM generate_series(1, :n)",
        n=count,
    )


def test_the_queue_monitor_alerts_once_while_over_and_again_after_clearing(
    smtp: SMTPServer,
) -> None:
    defer_fake_jobs(2)
    readings = {r["queue"]: r for r in queue_monitor_task()}
    assert readings["dataset"]["waiting"] == 2
    assert readings["dataset"]["oldest_ready_seconds"] is not None
    defer_fake_jobs(1)  # crosses the threshold of 3

    queue_monitor_task()
    queue_monitor_task()  # still over: no second alert
    inprocess.drain(["mail"])

    [alert] = smtp.received
    assert alert.recipients == ["ops@example.com"]
    assert "dataset" in alert.subject and "3" in alert.subject
    with db.session_scope(new=True) as session:
        state = session.get(QueueMonitorAlert, "dataset")
        assert state is not None and state.alerting and state.waiting == 3

    sql("DELETE FROM procrastinate_jobs WHERE task_name = 'tests.nothing'")
    queue_monitor_task()  # cleared
    defer_fake_jobs(4)
    queue_monitor_task()  # crossed again
    inprocess.drain(["mail"])
    assert len(smtp.received) == 2
