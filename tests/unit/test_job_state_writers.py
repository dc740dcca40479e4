"""One place writes job state: no module but ``worker.jobs.state`` (with its SQL file) changes a
job's status or outcome."""

from __future__ import annotations

import re
from pathlib import Path

WORKER = Path(__file__).resolve().parents[2] / "worker"
ALLOWED = {WORKER / "jobs" / "state.py", WORKER / "domain" / "sql" / "job_state.sql"}
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
        and WRITES.search(path.read_text(encoding="utf-8"))
    )  # fmt: skip

    assert writers == []


def test_the_state_module_is_where_the_writes_are() -> None:
    text = (WORKER / "domain" / "sql" / "job_state.sql").read_text(encoding="utf-8")

    assert WRITES.search(text)
