"""Dify's trace payloads as Langfuse ingestion events.

Event ids derive from the payload's file id and the event's position, so a payload sent again
(a retry, a job redelivered after a crash) carries the same ids and Langfuse keeps one of each.
Observation ids derive the same way (or are Dify's node execution ids); the trace id is Dify's
message id, else the workflow run id, else derived from the file id.

- ``MessageTraceInfo`` -> ``trace-create`` + ``generation-create`` (model, usage);
- ``WorkflowTraceInfo`` -> ``trace-create`` + a ``span-create`` for the run and one per node
  execution the payload lists (``node_executions``), children of the run's span;
- every other type -> ``trace-create`` + ``span-create``. When the trace is a message's trace
  (``message_id``), its ``trace-create`` carries only the id, so that it does not overwrite the
  message's own trace (Langfuse merges the events of one trace).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from worker.domain.ops_trace.payload import Payload

#: Namespace of the derived ids.
NAMESPACE = uuid.UUID("6f1d2c3e-4b5a-4c7d-9e8f-0a1b2c3d4e5f")

Event = dict[str, Any]

#: Span names of the types that are neither messages nor workflows.
_SPAN_NAMES = {
    "ModerationTraceInfo": "moderation",
    "SuggestedQuestionTraceInfo": "suggested_question",
    "DatasetRetrievalTraceInfo": "dataset_retrieval",
    "ToolTraceInfo": "tool",
    "GenerateNameTraceInfo": "generate_conversation_name",
}


def derived_id(file_id: str, what: str) -> str:
    """A stable id for ``what`` of the payload ``file_id``."""
    return str(uuid.uuid5(NAMESPACE, f"{file_id}/{what}"))


def build(file_id: str, payload: Payload) -> list[Event]:
    """The ingestion events of one payload, in order (the trace first)."""
    info = payload.trace_info
    trace_id = _text(info.get("message_id")) or _text(info.get("workflow_run_id"))
    trace_id = trace_id or derived_id(file_id, "trace")
    bodies: list[tuple[str, dict[str, Any]]]
    if payload.trace_info_type == "MessageTraceInfo":
        bodies = [("trace-create", _trace(info, trace_id, "message"))]
        bodies.append(_generation(file_id, info, trace_id))
    elif payload.trace_info_type == "WorkflowTraceInfo":
        bodies = [("trace-create", _trace(info, trace_id, "workflow"))]
        bodies += _workflow_spans(file_id, info, trace_id)
    else:
        name = _SPAN_NAMES.get(payload.trace_info_type, payload.trace_info_type)
        if payload.trace_info_type == "ToolTraceInfo" and info.get("tool_name"):
            name = f"tool:{info['tool_name']}"
        trace = {"id": trace_id} if info.get("message_id") else _trace(info, trace_id, name)
        span = _observation(info, trace_id, derived_id(file_id, "span"), name)
        bodies = [("trace-create", trace), ("span-create", span)]
    timestamp = _time(info.get("end_time")) or _time(info.get("start_time")) or _now()
    return [
        {
            "id": derived_id(file_id, f"event/{n}"),
            "type": kind,
            "timestamp": timestamp,
            "body": body,
        }
        for n, (kind, body) in enumerate(bodies)
    ]


def _trace(info: Mapping[str, Any], trace_id: str, name: str) -> dict[str, Any]:
    metadata = dict(info.get("metadata") or {})
    body = {
        "id": trace_id,
        "name": name,
        "timestamp": _time(info.get("start_time")),
        "input": info.get("inputs"),
        "output": info.get("outputs"),
        "userId": _text(metadata.get("user_id") or metadata.get("from_account_id")),
        "sessionId": _text(info.get("conversation_id") or metadata.get("conversation_id")),
        "metadata": metadata or None,
        "tags": [name],
    }
    return _compact(body)


def _observation(
    info: Mapping[str, Any], trace_id: str, observation_id: str, name: str
) -> dict[str, Any]:
    error = _text(info.get("error"))
    return _compact(
        {
            "id": observation_id,
            "traceId": trace_id,
            "name": name,
            "startTime": _time(info.get("start_time")),
            "endTime": _time(info.get("end_time")),
            "input": info.get("inputs"),
            "output": info.get("outputs"),
            "metadata": info.get("metadata") or None,
            "level": "ERROR" if error else "DEFAULT",
            "statusMessage": error,
        }
    )


def _generation(file_id: str, info: Mapping[str, Any], trace_id: str) -> tuple[str, dict[str, Any]]:
    message = info.get("message_data") or {}
    body = _observation(info, trace_id, derived_id(file_id, "generation"), "llm")
    body["model"] = _text(message.get("model_id") or info.get("model_id"))
    body["usage"] = _compact(
        {
            "input": info.get("message_tokens"),
            "output": info.get("answer_tokens"),
            "total": info.get("total_tokens"),
            "unit": "TOKENS",
        }
    )
    return "generation-create", _compact(body)


def _workflow_spans(
    file_id: str, info: Mapping[str, Any], trace_id: str
) -> list[tuple[str, dict[str, Any]]]:
    run_span = derived_id(file_id, "workflow")
    spans = [("span-create", _observation(info, trace_id, run_span, "workflow"))]
    for n, node in enumerate(info.get("node_executions") or []):
        if not isinstance(node, Mapping):
            continue
        node_id = _text(node.get("id")) or derived_id(file_id, f"node/{n}")
        body = _observation(node, trace_id, node_id, _text(node.get("title")) or f"node {n}")
        body["parentObservationId"] = run_span
        spans.append(("span-create", body))
    return spans


def _compact(body: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in body.items() if value is not None}


def _text(value: object) -> str | None:
    return str(value) if value not in (None, "") else None


def _time(value: object) -> str | None:
    """An ISO-8601 time in UTC; Dify's payloads hold ISO strings (naive ones are UTC)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC).isoformat()
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()


def _now() -> str:
    return datetime.now(UTC).isoformat()
