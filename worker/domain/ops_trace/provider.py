"""Which provider an app traces to now: ``apps.tracing`` and its active ``trace_app_config``.

Read when the job runs, not when it was deferred: tracing switched off (or the app deleted)
meanwhile means nothing is sent.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from worker.domain.errors import PermanentError
from worker.domain.models import App, TraceAppConfig
from worker.domain.ops_trace.langfuse import DEFAULT_HOST, LangfuseTarget

#: The provider this worker delivers to.
LANGFUSE = "langfuse"


class TracingMisconfigured(PermanentError):
    """The app's tracing configuration cannot be used."""


@dataclass(frozen=True, kw_only=True)
class Resolved:
    """Where to send, or why nothing is sent."""

    provider: str | None = None
    target: LangfuseTarget | None = None
    #: Why nothing is sent (tracing off, app gone), when ``target`` is ``None``.
    skipped: str | None = None


def tracing_enabled(session: orm.Session, app_id: uuid.UUID) -> bool:
    """Whether the app exists and has tracing switched on (``apps.tracing``)."""
    tracing = session.scalar(sa.select(App.tracing).where(App.id == app_id))
    return bool(tracing and tracing.get("enabled"))


def resolve(session: orm.Session, app_id: uuid.UUID) -> Resolved:
    """The app's provider as its rows say now.

    Raises
    ------
    TracingMisconfigured
        Tracing is on for a provider this worker does not deliver to, or its configuration
        lacks a key.
    """
    app = session.get(App, app_id)
    if app is None:
        return Resolved(skipped="the app no longer exists")
    tracing = app.tracing or {}
    if not tracing.get("enabled"):
        return Resolved(skipped="tracing is disabled for the app")
    provider = str(tracing.get("tracing_provider") or "")
    config = session.scalars(
        sa.select(TraceAppConfig)
        .where(
            TraceAppConfig.app_id == app_id,
            TraceAppConfig.tracing_provider == provider,
            TraceAppConfig.is_active,
        )
        .order_by(TraceAppConfig.updated_at.desc())
        .limit(1)
    ).first()
    if config is None:
        return Resolved(provider=provider, skipped=f"no active {provider!r} configuration")
    if provider != LANGFUSE:
        raise TracingMisconfigured(
            f"tracing provider {provider!r} is not delivered by this worker (only {LANGFUSE})"
        )
    return Resolved(provider=provider, target=_langfuse(config.tracing_config or {}))


def _langfuse(config: dict[str, Any]) -> LangfuseTarget:
    missing = [key for key in ("public_key", "secret_key") if not config.get(key)]
    if missing:
        raise TracingMisconfigured(f"the langfuse configuration lacks {', '.join(missing)}")
    host = str(config.get("host") or DEFAULT_HOST)
    if not host.startswith(("http://", "https://")):
        raise TracingMisconfigured(f"the langfuse host {host!r} is not an http(s) URL")
    return LangfuseTarget(
        host=host, public_key=str(config["public_key"]), secret_key=str(config["secret_key"])
    )
