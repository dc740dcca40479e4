from __future__ import annotations

import logging

from worker.jobs import secrets


def record(message: str, **extra: object) -> logging.LogRecord:
    log = logging.LogRecord("procrastinate.worker", logging.INFO, "f", 1, message, None, None)
    log.__dict__.update(extra)
    return log


def test_secret_values_of_a_jobs_record_are_masked() -> None:
    secrets.register("tests.secret_mail", ["code"])
    job = {"task_name": "tests.secret_mail", "task_kwargs": {"to": "a@b.c", "code": "314159"}}
    log = record("Starting job tests.secret_mail[1](to='a@b.c', code='314159')", job=job)

    secrets.RedactSecrets().filter(log)

    assert "314159" not in log.getMessage()
    assert log.job["task_kwargs"]["code"] == "***"  # type: ignore[attr-defined]


def test_shutdown_lines_without_a_job_extra_are_masked_too() -> None:
    secrets.register("tests.secret_mail", ["code"])
    log = record("Waiting for job to finish: worker: tests.secret_mail[1](code='271828') (1 s)")

    secrets.RedactSecrets().filter(log)

    assert (
        log.getMessage()
        == "Waiting for job to finish: worker: tests.secret_mail[1](code='***') (1 s)"
    )
