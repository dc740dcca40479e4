"""Tasks used by the tests, registered on the real app (the worker imports them through
``WORKER_IMPORT_PATHS=tests.sample_tasks``). Effects are tenant rows, easy to count."""

from __future__ import annotations

import os
import time
from pathlib import Path

import sqlalchemy as sa

from worker import db, queues
from worker.domain.errors import PermanentError, TransientError
from worker.domain.models import Tenant
from worker.jobs import NO_RETRY, Retry, current_job, task


@task(name="tests.add", queue=queues.DEFAULT, retry=NO_RETRY)
def add(x: int, y: int) -> int:
    return x + y


@task(name="tests.create_tenant", queue=queues.DATASET, retry=NO_RETRY)
def create_tenant(name: str, follow_up: str | None = None) -> str:
    """Insert a tenant; optionally defer ``create_tenant(follow_up)`` in the same transaction."""
    with db.session_scope() as session:
        tenant = Tenant(name=name)
        session.add(tenant)
        session.flush()
        if follow_up is not None:
            create_tenant.delay(follow_up)
        return str(tenant.id)


@task(name="tests.create_tenant_then_fail", queue=queues.DATASET, retry=NO_RETRY)
def create_tenant_then_fail(name: str, follow_up: str) -> None:
    """Write and defer, then fail: neither the row nor the follow-up job may survive."""
    with db.session_scope() as session:
        session.add(Tenant(name=name))
        create_tenant.delay(follow_up)
        session.flush()
    raise PermanentError(f"refusing {name}")


@task(name="tests.mail_like", queue=queues.MAIL, retry=NO_RETRY)
def mail_like(name: str) -> str:
    with db.session_scope() as session:
        session.add(Tenant(name=name))
    return name


@task(
    name="tests.flaky",
    queue=queues.DEFAULT,
    retry=Retry(max_retries=2, default_retry_delay=0),
)
def flaky(counter: str, failures: int) -> int:
    """Fail with a transient error ``failures`` times (counted in a file), then succeed."""
    path = Path(counter)
    runs = len(path.read_text().splitlines()) if path.exists() else 0
    with path.open("a") as handle:
        handle.write("run\n")
    if runs < failures:
        raise TransientError(f"transient failure {runs + 1}")
    return runs + 1


@task(name="tests.broken", queue=queues.DEFAULT, retry=Retry(max_retries=3, default_retry_delay=0))
def broken(reason: str) -> None:
    raise PermanentError(reason)


@task(name="tests.slow_tenant", queue=queues.DATASET, lock="tenant-name:{name}", retry=NO_RETRY)
def slow_tenant(name: str, seconds: float) -> str:
    """Sleep, then insert a tenant: long enough to be killed mid-job."""
    time.sleep(seconds)
    with db.session_scope() as session:
        session.add(Tenant(name=name))
    return name


@task(
    name="tests.requeue_self_then_fail",
    queue=queues.DEFAULT,
    queueing_lock="{key}",
    retry=Retry(max_retries=3, default_retry_delay=0),
)
def requeue_self_then_fail(key: str) -> None:
    """While running, a duplicate gets queued (committed on its own); then fail transiently, so
    that procrastinate's retry meets the duplicate's queueing lock."""
    with db.session_scope(new=True):
        requeue_self_then_fail.apply_async(args=(key,), countdown=3600)
    raise TransientError("fail after a duplicate was queued")


# -- chaos test (tests/chaos.py): one row per run that commits, in the job's own transaction ------

#: Retry policy of the chaos tasks: a transient failure is retried at once.
CHAOS_RETRY = Retry(max_retries=3, default_retry_delay=0)


def _chaos_effect(key: str, seconds: float, fail_once: bool) -> None:
    """Sleep (so that kills land mid-job), fail transiently on the first attempt if asked, then
    write one ``chaos_effects`` row in the job's transaction: it commits with the job's
    ``succeeded`` status or not at all. The table has no unique key, so a job whose effect is
    committed twice shows up as two rows."""
    job = current_job()
    if seconds:
        time.sleep(seconds)
    if fail_once and job.attempts == 0:
        raise TransientError(f"chaos: {key} fails its first attempt")
    with db.session_scope() as session:
        session.execute(
            sa.text(
                "INSERT INTO chaos_effects (job_key, job_id, pid, queue_name) "
                "VALUES (:key, :job_id, :pid, :queue)"
            ),
            {"key": key, "job_id": job.id, "pid": os.getpid(), "queue": job.queue},
        )


@task(name="tests.chaos_effect", queue=queues.DATASET, retry=CHAOS_RETRY)
def chaos_effect(key: str, seconds: float = 0, fail_once: bool = False) -> None:
    """One chaos effect row on the ``dataset`` queue; no lock (each key is deferred once)."""
    _chaos_effect(key, seconds, fail_once)


@task(name="tests.chaos_effect_default", queue=queues.DEFAULT, retry=CHAOS_RETRY)
def chaos_effect_default(key: str, seconds: float = 0, fail_once: bool = False) -> None:
    """One chaos effect row on the ``default`` queue; no lock (each key is deferred once)."""
    _chaos_effect(key, seconds, fail_once)


@task(name="tests.chaos_effect_mail", queue=queues.MAIL, retry=CHAOS_RETRY)
def chaos_effect_mail(key: str, seconds: float = 0, fail_once: bool = False) -> None:
    """One chaos effect row on the ``mail`` queue; no lock (each key is deferred once)."""
    _chaos_effect(key, seconds, fail_once)
