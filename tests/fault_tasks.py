"""Tasks for the fault-tolerance tests (fencing, poison jobs, database interruptions), registered
on the real app; the worker imports them with ``WORKER_IMPORT_PATHS=tests.fault_tasks``."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import sqlalchemy as sa

from worker import db, queues
from worker.domain.errors import PermanentError
from worker.domain.models import Tenant
from worker.jobs import NO_RETRY, Retry, task
from worker.jobs.uow import UnitOfWork


@task(name="tests.fence_probe", queue=queues.DEFAULT, retry=NO_RETRY)
def fence_probe(
    name: str, marker: str, seconds: float, first_run_fails: bool, later_seconds: float = 0
) -> str:
    """Each run appends its pid to the ``marker`` file. The first run sleeps ``seconds``, then
    fails permanently (``first_run_fails``) or writes its tenant; later runs sleep
    ``later_seconds``, write the tenant and return ``"run <pid>"``."""
    path = Path(marker)
    first = not path.exists()
    with path.open("a") as handle:
        handle.write(f"{os.getpid()}\n")
    time.sleep(seconds if first else later_seconds)
    if first and first_run_fails:
        raise PermanentError(f"first run of {name} in {os.getpid()} refuses")
    with db.session_scope() as session:
        session.add(Tenant(name=name))
    return f"run {os.getpid()}"


@task(name="tests.kill_my_worker", queue=queues.DEFAULT, retry=NO_RETRY)
def kill_my_worker(name: str) -> None:
    """Poison: SIGKILLs the worker process that runs it (as a segfaulting parser would)."""
    time.sleep(0.3)
    os.kill(os.getpid(), signal.SIGKILL)


@task(name="tests.innocent", queue=queues.DATASET, retry=NO_RETRY)
def innocent(name: str, seconds: float) -> str:
    """A job that only writes its tenant after ``seconds``: it shares workers with poison."""
    time.sleep(seconds)
    with db.session_scope() as session:
        session.add(Tenant(name=name))
    return name


@task(name="tests.broken_connection", queue=queues.DEFAULT, retry=NO_RETRY)
def broken_connection(name: str, marker: str) -> str:
    """The first run has its own database connection killed under it (as a Postgres restart
    would), with no retry policy at all; later runs write the tenant."""
    path = Path(marker)
    with db.session_scope() as session:
        if not path.exists():
            path.write_text("killed")
            session.execute(sa.text("SELECT pg_terminate_backend(pg_backend_pid())"))
        session.add(Tenant(name=name))
    return name


@task(name="tests.steps", queue=queues.DEFAULT, retry=Retry(max_retries=0))
def steps(name: str, count: int, *, uow: UnitOfWork) -> int:
    """Commits ``count`` tenants in steps, then one more with the job's outcome."""
    for index in range(count):
        with uow.step() as session:
            session.add(Tenant(name=f"{name}-{index}"))
    uow.session.add(Tenant(name=f"{name}-final"))
    return count
