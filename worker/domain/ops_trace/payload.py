"""Trace payload files: ``ops_trace/{app_id}/{file_id}.json`` in the worker's storage.

The producer (Dify's API, or :func:`worker.api.trace`) writes ``{"app_id", "trace_info_type",
"trace_info"}`` there and defers ``process_trace_tasks({"app_id", "file_id"})``; the task reads
it back. A payload written in a transaction that rolls back is deleted again.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from worker.domain.errors import DomainError, PermanentError
from worker.domain.ports import Storage

logger = logging.getLogger(__name__)

#: Folder of the payloads in storage (Dify's).
PREFIX = "ops_trace"
#: Dify's trace info types (``core.ops.entities.trace_entity``).
TRACE_INFO_TYPES = frozenset(
    {
        "WorkflowTraceInfo",
        "MessageTraceInfo",
        "ModerationTraceInfo",
        "SuggestedQuestionTraceInfo",
        "DatasetRetrievalTraceInfo",
        "ToolTraceInfo",
        "GenerateNameTraceInfo",
    }
)
_FILE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
#: ``session.info`` key of the payloads written in the session's transaction.
_WRITTEN = "ops_trace_payloads_written"


class InvalidTraceFile(PermanentError):
    """The job's ``file_info`` does not name a trace payload."""


class InvalidPayload(PermanentError):
    """A trace payload is not what Dify writes."""


@dataclass(frozen=True, kw_only=True)
class FileInfo:
    """Which payload a job delivers: Dify's ``{"file_id", "app_id"}``."""

    file_id: str
    app_id: uuid.UUID

    @classmethod
    def parse(cls, file_info: Mapping[str, Any]) -> FileInfo:
        """Check Dify's ``file_info`` argument.

        Raises
        ------
        InvalidTraceFile
            A key is missing, the file id is not 1-64 letters, digits, ``-`` or ``_``, or the
            app id is not a UUID.
        """
        file_id, app_id = file_info.get("file_id"), file_info.get("app_id")
        if not isinstance(file_id, str) or not _FILE_ID.match(file_id):
            raise InvalidTraceFile(f"file_info: file_id {file_id!r} is not a payload name")
        try:
            app = uuid.UUID(str(app_id))
        except ValueError:
            raise InvalidTraceFile(f"file_info: app_id {app_id!r} is not a UUID") from None
        return cls(file_id=file_id, app_id=app)

    @property
    def key(self) -> str:
        """The payload's storage key."""
        return f"{PREFIX}/{self.app_id}/{self.file_id}.json"


@dataclass(frozen=True, kw_only=True)
class Payload:
    """A payload as Dify writes it."""

    trace_info_type: str
    trace_info: Mapping[str, Any]


def parse(data: bytes, info: FileInfo) -> Payload:
    """Read a payload file's bytes.

    Raises
    ------
    InvalidPayload
        Not JSON, not an object, an unknown ``trace_info_type`` or no ``trace_info`` object.
    """
    try:
        body = json.loads(data)
    except ValueError:
        raise InvalidPayload(f"payload {info.key} is not JSON") from None
    if not isinstance(body, dict):
        raise InvalidPayload(f"payload {info.key} is not a JSON object")
    kind, trace_info = body.get("trace_info_type"), body.get("trace_info")
    if kind not in TRACE_INFO_TYPES:
        raise InvalidPayload(f"payload {info.key}: unknown trace_info_type {kind!r}")
    if not isinstance(trace_info, dict):
        raise InvalidPayload(f"payload {info.key}: trace_info is not an object")
    return Payload(trace_info_type=str(kind), trace_info=trace_info)


def write(
    session: orm.Session,
    storage: Storage,
    *,
    app_id: uuid.UUID,
    trace_info_type: str,
    trace_info: Mapping[str, Any],
) -> FileInfo:
    """Store a payload for ``process_trace_tasks``; deleted again if ``session`` rolls back.

    Raises
    ------
    InvalidPayload
        An unknown ``trace_info_type``, or ``trace_info`` that is not JSON.
    TransientError
        The disk refused the write.
    """
    if trace_info_type not in TRACE_INFO_TYPES:
        raise InvalidPayload(f"unknown trace_info_type {trace_info_type!r}")
    info = FileInfo(file_id=uuid.uuid4().hex, app_id=app_id)
    body = {"app_id": str(app_id), "trace_info_type": trace_info_type, "trace_info": trace_info}
    try:
        data = json.dumps(body, default=str, allow_nan=False).encode()
    except ValueError as exc:
        raise InvalidPayload(f"trace_info is not JSON: {exc}") from None
    storage.save(info.key, data)
    _delete_on_rollback(session, storage, info.key)
    return info


def _delete_on_rollback(session: orm.Session, storage: Storage, key: str) -> None:
    if _WRITTEN not in session.info:
        sa.event.listen(session, "after_commit", _forget)
        sa.event.listen(session, "after_rollback", _delete)
    session.info.setdefault(_WRITTEN, []).append((storage, key))


def _forget(session: orm.Session) -> None:
    if not session.in_nested_transaction():
        session.info[_WRITTEN] = []


def _delete(session: orm.Session) -> None:
    if session.in_nested_transaction():
        return
    written, session.info[_WRITTEN] = session.info.get(_WRITTEN, []), []
    for storage, key in written:
        try:
            storage.delete(key)
        except DomainError as exc:
            logger.warning(
                "trace payload %s of a rolled-back transaction not deleted (the sweep will): %s",
                key,
                exc,
                extra={"action": "trace_payload_orphaned", "storage_key": key},
            )
