"""The private parts of procrastinate 3.10.0 we rely on (``worker.jobs.pinned``): fail loudly if
the pinned version changes any of them."""

from __future__ import annotations

import inspect
from importlib import resources

import procrastinate
import procrastinate.psycopg_connector

from worker.app import app
from worker.jobs import pinned
from worker.jobs.connector import TxAwarePsycopgConnector


def _schema() -> str:
    return resources.files("procrastinate.sql").joinpath("schema.sql").read_text()


def test_procrastinate_is_the_pinned_version() -> None:
    assert procrastinate.__version__ == "3.10.0"


def test_register_task_is_the_private_method_we_call() -> None:
    source = inspect.getsource(procrastinate.App._register_task)

    assert list(inspect.signature(procrastinate.App._register_task).parameters) == ["self", "task"]
    assert "self._add_task(task=task, name=task.name, to=to_add)" in source
    assert "self.tasks.update(to_add)" in source
    app.perform_import_paths()  # type: ignore[no-untyped-call]
    assert app.tasks, "our tasks registered through it"


def test_the_insert_trigger_notifies_the_channel_and_payload_we_listen_for() -> None:
    schema = _schema()

    assert "pg_notify('procrastinate_queue_v1#' || NEW.queue_name, payload)" in schema
    assert "json_build_object('type', 'job_inserted', 'job_id', NEW.id)" in schema
    assert pinned.channel("mail") == "procrastinate_queue_v1#mail"


def test_the_status_enum_and_the_columns_we_read_are_the_pinned_ones() -> None:
    schema = _schema()

    enum = schema[schema.index("CREATE TYPE procrastinate_job_status") :].split(");")[0]
    assert all(f"'{status}'" in enum for status in pinned.STATUSES)
    table = schema[schema.index("CREATE TABLE procrastinate_jobs") :].split(");")[0]
    columns = ("queue_name", "task_name", "priority", "lock", "queueing_lock", "args", "status",
               "scheduled_at", "attempts", "abort_requested", "worker_id")  # fmt: skip
    for column in columns:
        assert f"\n    {column} " in table
    assert "CREATE TABLE procrastinate_workers" in schema
    assert "last_heartbeat timestamp with time zone" in schema


def test_the_connector_methods_we_override_exist_with_their_signatures() -> None:
    theirs = procrastinate.psycopg_connector.PsycopgConnector
    for name in ("execute_query_all_with_connection", "execute_query_one_with_connection"):
        assert list(inspect.signature(getattr(theirs, name)).parameters) == list(
            inspect.signature(getattr(TxAwarePsycopgConnector, name)).parameters
        )
