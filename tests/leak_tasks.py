"""A task that leaks memory on purpose, for the recycling tests (``WORKER_IMPORT_PATHS=
tests.leak_tasks``). Its effect is a tenant row per job, named after the job's number, that says
which process image ran it (:data:`LIFETIME`, new at every start or recycle) and how much memory
that process held right after the job's allocation."""

from __future__ import annotations

import os
import uuid

from worker import db, queues
from worker.domain.models import Tenant
from worker.jobs import NO_RETRY, recycling, task

#: This process image's identity: a recycled process (same pid after exec) gets a new one.
LIFETIME = uuid.uuid4().hex
#: What the jobs leaked: never freed, as a leaking parser's caches.
_LEAKED: list[bytearray] = []


@task(name="tests.leak", queue=queues.DEFAULT, retry=NO_RETRY)
def leak(n: int, mib: int) -> str:
    """Keep ``mib`` MiB of touched (resident) memory for ever, then record job ``n``'s tenant with
    this process's lifetime and resident size."""
    if mib:
        _LEAKED.append(bytearray(b"\x01") * (mib * recycling.MIB))
    rss = recycling.resident_bytes()
    with db.session_scope() as session:
        session.add(
            Tenant(
                name=f"leak-{n}",
                custom_config={"lifetime": LIFETIME, "rss": rss, "pid": os.getpid()},
            )
        )
    return LIFETIME
