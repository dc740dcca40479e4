"""Ops traces: Dify's trace payloads delivered to Langfuse, synchronously, once.

``payload`` reads and writes the payload files (``ops_trace/{app_id}/{file_id}.json``),
``provider`` resolves an app's tracing provider from its rows, ``events`` maps a payload to
Langfuse ingestion events, ``langfuse`` sends them, ``service`` delivers one payload with its
``trace_deliveries`` record, and ``sweep`` deletes the payloads whose outcome is final.
"""

from __future__ import annotations

from worker.domain.ops_trace import payload, provider
from worker.domain.ops_trace.langfuse import Langfuse, LangfuseTarget, ProviderRefused
from worker.domain.ops_trace.payload import FileInfo, InvalidPayload, InvalidTraceFile
from worker.domain.ops_trace.provider import TracingMisconfigured
from worker.domain.ops_trace.service import PayloadMissing, process
from worker.domain.ops_trace.sweep import SweepPolicy, sweep

__all__ = [
    "FileInfo",
    "InvalidPayload",
    "InvalidTraceFile",
    "Langfuse",
    "LangfuseTarget",
    "PayloadMissing",
    "ProviderRefused",
    "SweepPolicy",
    "TracingMisconfigured",
    "payload",
    "process",
    "provider",
    "sweep",
]
