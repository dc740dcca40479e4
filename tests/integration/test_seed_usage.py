"""The seed's usage examples (使用示例), ported by changing imports only."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import documents, factories
from tests.inprocess import drain
from tests.smtp import SMTPServer
from tests.uow import run
from worker import db, runtime
from worker.app import app
from worker.config import Settings
from worker.domain import indexing

# was: from tasks.add_document_to_index_task import add_document_to_index_task
#      from tasks.mail_invite_member_task import send_invite_member_mail_task
#      from celery.result import AsyncResult
#      from celery import group
from worker.jobs import AsyncResult, group
from worker.tasks import add_document_to_index_task, send_invite_member_mail_task


@pytest.fixture(autouse=True)
def task_layer(database_url: str, tmp_path: Path) -> Iterator[SMTPServer]:
    with SMTPServer() as smtp:
        runtime.setup(database_url, settings=Settings(
            storage_local_path=tmp_path, mail_type="smtp", smtp_server="127.0.0.1",
            smtp_port=smtp.port, mail_default_send_from="no-reply@dify.example",
        ))  # fmt: skip
        yield smtp
        runtime.teardown()


def completed_documents(storage: Path, count: int) -> list[str]:
    ids = []
    with db.session_scope() as session:
        dataset = factories.make_dataset(session, factories.make_tenant(session))
        for i in range(count):
            doc = factories.make_upload_document(
                session, dataset, storage, f"doc{i}.md", documents.MARKDOWN.encode(), position=i
            )
            ids.append(str(doc.id))
    for document_id in ids:
        run(indexing.index_document, runtime.current().pipeline, document_id)
    return ids


def test_submit_and_monitor_as_in_the_seed(tmp_path: Path, task_layer: SMTPServer) -> None:
    (document_id,) = completed_documents(tmp_path, 1)

    task = add_document_to_index_task.delay(document_id)
    mail_task = send_invite_member_mail_task.delay(
        language="en-US",
        to="user@example.com",
        token="invitation_token",
        inviter_name="John Doe",
        workspace_name="My Workspace",
    )
    drain()

    result = AsyncResult(task.id)
    assert result.status == "SUCCESS"
    assert result.ready() and result.successful()
    assert result.get() == "completed"
    mail_result = AsyncResult(mail_task.id)
    assert mail_result.successful(), mail_result.info
    assert len(task_layer.received) == 1


def test_batch_as_in_the_seed(tmp_path: Path) -> None:
    document_ids = completed_documents(tmp_path, 3)

    tasks = group(add_document_to_index_task.s(doc_id) for doc_id in document_ids)
    result = tasks.apply_async()
    drain()

    assert result.get(timeout=10) == ["completed"] * 3
