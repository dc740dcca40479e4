"""One place writes job state: no module but ``worker.jobs.state`` (with its SQL file) changes a
job's status or outcome."""

from __future__ import annotations

import re
from pathlib import Path

WORKER = Path(__file__).resolve().parents[2] / "worker"
ALLOWED = {WORKER / "jobs" / "state.py", WORKER / "domain" / "sql" / "job_state.sql"}
#: Deferring inserts new jobs (procrastinate's columns of a job to defer, never a status): it
#: changes no job's state, and that one statement is all it may write.
DEFERRING = WORKER / "jobs" / "deferring.py"
NEW_JOBS = (
    "INSERT INTO procrastinate_jobs\n"
    "    (queue_name, task_name, priority, lock, queueing_lock, args, scheduled_at)\n"
)
WRITES = re.compile(
    r"(UPDATE|INSERT\s+INTO|DELETE\s+FROM)\s+(procrastinate_jobs|task_results)\b"
    r"|procrastinate_(finish|retry|cancel)_job_v\d"
    r"|[^s]\sTaskResult\(|insert\(TaskResult|job_manager\.(finish_job|retry_job|cancel_job)",
    re.IGNORECASE,
)


def test_only_the_state_module_writes_job_status_and_outcomes() -> None:
    writers = sorted(
        str(path.relative_to(WORKER))
        for path in WORKER.rglob("*")
        if path.suffix in (".py", ".sql") and path not in ALLOWED
        and WRITES.search(_without_new_jobs(path))
    )  # fmt: skip

    assert writers == []


def _without_new_jobs(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    if path == DEFERRING:
        assert text.count(NEW_JOBS) == 1, "deferring.py inserts jobs by one statement, no status"
        text = text.replace(NEW_JOBS, "")
    return text


def test_the_state_module_is_where_the_writes_are() -> None:
    text = (WORKER / "domain" / "sql" / "job_state.sql").read_text(encoding="utf-8")

    assert WRITES.search(text)
