"""Annotation reply tasks (queue ``annotation``), with Dify's names and arguments.

Dify runs them on ``dataset``; here they get the ``annotation`` queue of the seed's config, so
that these short jobs, whose status the console polls, never wait behind document indexing.
All six hold ``lock="app:<app_id>:annotation"``: one at a time per app, in the order deferred.
Enable and disable share the queueing lock ``app:<app_id>:annotation_reply``, so at most one of
them waits per app (Dify's never-set ``enable_app_annotation_{app_id}`` guard); app code defers
them, and the import, with :func:`worker.domain.job_status.defer` to get a polled status.
"""

from __future__ import annotations

from worker import queues, runtime
from worker.domain.annotation import imports, index, reply
from worker.jobs import Retry, task, will_retry
from worker.jobs.uow import UnitOfWork

APP_LOCK = "app:{app_id}:annotation"
REPLY_QUEUEING_LOCK = "app:{app_id}:annotation_reply"

#: Transient failures (the embedding endpoint answering 429/5xx or timing out, refused
#: connections) retry 3 times, after 5, 15 and 45 s: the console polls these jobs, and a waiting
#: retry holds the app's lock. Their status reads ``processing`` meanwhile.
ANNOTATION_RETRY = Retry(max_retries=3, default_retry_delay=5, backoff=3, max_delay=300)


@task(
    name="annotation.add_to_index", queue=queues.ANNOTATION, retry=ANNOTATION_RETRY, lock=APP_LOCK
)
def add_annotation_to_index_task(
    annotation_id: str,
    question: str,
    tenant_id: str,
    app_id: str,
    collection_binding_id: str,
    *,
    uow: UnitOfWork,
) -> str:
    """Index the annotation's current text where the app's replies point; app lock; upsert."""
    return index.index_annotation(
        uow, runtime.current().pipeline,
        annotation_id=annotation_id, app_id=app_id, collection_binding_id=collection_binding_id,
    )  # fmt: skip


@task(
    name="annotation.update_index", queue=queues.ANNOTATION, retry=ANNOTATION_RETRY, lock=APP_LOCK
)
def update_annotation_to_index_task(
    annotation_id: str,
    question: str,
    tenant_id: str,
    app_id: str,
    collection_binding_id: str,
    *,
    uow: UnitOfWork,
) -> str:
    """As add (the later job writes the current text); app lock; one upsert, never a gap."""
    return index.index_annotation(
        uow, runtime.current().pipeline,
        annotation_id=annotation_id, app_id=app_id, collection_binding_id=collection_binding_id,
    )  # fmt: skip


@task(
    name="annotation.delete_index", queue=queues.ANNOTATION, retry=ANNOTATION_RETRY, lock=APP_LOCK
)
def delete_annotation_index_task(
    annotation_id: str, app_id: str, tenant_id: str, collection_binding_id: str, *, uow: UnitOfWork
) -> str:
    """Delete the annotation's vector in every annotation collection; app lock; idempotent."""
    return index.delete_annotation_index(uow, annotation_id=annotation_id, app_id=app_id)


@task(
    name="annotation.enable_reply",
    queue=queues.ANNOTATION,
    retry=ANNOTATION_RETRY,
    lock=APP_LOCK,
    queueing_lock=REPLY_QUEUEING_LOCK,
)
def enable_annotation_reply_task(
    job_id: str,
    app_id: str,
    user_id: str,
    tenant_id: str,
    score_threshold: float,
    embedding_provider_name: str,
    embedding_model_name: str,
    *,
    uow: UnitOfWork,
) -> str:
    """Index the app's annotations and switch its replies over; app lock; re-run converges."""
    return reply.enable_reply(
        uow, runtime.current().pipeline,
        job_id=job_id, app_id=app_id, tenant_id=tenant_id, user_id=user_id,
        score_threshold=score_threshold, embedding_provider_name=embedding_provider_name,
        embedding_model_name=embedding_model_name, retrying=will_retry,
    )  # fmt: skip


@task(
    name="annotation.disable_reply",
    queue=queues.ANNOTATION,
    retry=ANNOTATION_RETRY,
    lock=APP_LOCK,
    queueing_lock=REPLY_QUEUEING_LOCK,
)
def disable_annotation_reply_task(
    job_id: str, app_id: str, tenant_id: str, *, uow: UnitOfWork
) -> str:
    """Drop the app's annotation vectors and setting in one transaction; app lock; idempotent."""
    return reply.disable_reply(
        uow, job_id=job_id, app_id=app_id, tenant_id=tenant_id, retrying=will_retry
    )


@task(
    name="annotation.batch_import", queue=queues.ANNOTATION, retry=ANNOTATION_RETRY, lock=APP_LOCK
)
def batch_import_annotations_task(
    job_id: str,
    content_list: list[dict[str, str]],
    app_id: str,
    tenant_id: str,
    user_id: str,
    *,
    uow: UnitOfWork,
) -> str:
    """Import annotations all or nothing; app lock; ids from (job, row): a re-run adds none."""
    return imports.batch_import(
        uow, runtime.current().pipeline,
        job_id=job_id, content_list=content_list, app_id=app_id, tenant_id=tenant_id,
        user_id=user_id, retrying=will_retry,
    )  # fmt: skip
