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


def test_the_jobs_of_a_deferred_line_are_masked() -> None:
    secrets.register("tests.secret_mail", ["code"])
    jobs = [
        {
            "id": 7,
            "task_name": "tests.secret_mail",
            "task_kwargs": {"to": "a@b.c", "code": "161803"},
            "call_string": "tests.secret_mail[7](to='a@b.c', code='161803')",
        }
    ]
    log = record("Deferred 1 job", jobs=jobs)

    secrets.RedactSecrets().filter(log)

    (job,) = log.jobs  # type: ignore[attr-defined]
    assert job["task_kwargs"] == {"to": "a@b.c", "code": "***"}
    assert job["call_string"] == "tests.secret_mail[7](to='a@b.c', code='***')"
    assert "161803" not in repr(vars(log))
    assert jobs[0]["task_kwargs"]["code"] == "161803", "the job itself is left alone"


def test_long_messages_arguments_and_extras_are_cut() -> None:
    body = "x" * 2_000_000
    job = {"task_name": "tests.other", "task_kwargs": {"body": body}, "call_string": body}
    log = record("job failed: %s", job=job, detail=body)
    log.args = (body,)

    secrets.RedactSecrets().filter(log)

    assert len(log.getMessage()) < secrets.MAX_LOG_MESSAGE + 100
    assert log.getMessage().endswith("more characters)")
    assert len(repr(vars(log))) < 10_000
