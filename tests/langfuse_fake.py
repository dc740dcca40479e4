"""A fake Langfuse ingestion API, served over real HTTP by pytest-httpserver (127.0.0.1).

It checks nothing by itself: it records every request (its ``Authorization`` header and JSON
body) and answers from a script of replies (default: ``207`` accepting every event, as Langfuse
does). ``hold()`` makes the next request wait until ``release()``, so that a test can kill the
worker after its request arrived and before it got the reply.
"""

from __future__ import annotations

import base64
import json
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tests import factories
from worker import db
from worker.domain.models import App, TraceAppConfig

PUBLIC_KEY = "pk-lf-test"
SECRET_KEY = "sk-lf-very-secret-0123456789"
PATH = "/api/public/ingestion"


def basic(public_key: str = PUBLIC_KEY, secret_key: str = SECRET_KEY) -> str:
    return "Basic " + base64.b64encode(f"{public_key}:{secret_key}".encode()).decode()


def make_traced_app(host: str, *, enabled: bool = True, provider: str = "langfuse") -> str:
    """An app tracing to the Langfuse at ``host`` (committed); its id."""
    with db.session_scope() as session:
        tenant = factories.make_tenant(session)
        app = App(tenant_id=tenant.id, name="Chat", mode="chat",
                  tracing={"enabled": enabled, "tracing_provider": provider})  # fmt: skip
        session.add(app)
        session.flush()
        config = {"public_key": PUBLIC_KEY, "secret_key": SECRET_KEY, "host": host}
        session.add(TraceAppConfig(app_id=app.id, tracing_provider=provider, tracing_config=config))
        return str(app.id)


@dataclass
class Received:
    authorization: str | None
    body: dict[str, Any]

    @property
    def event_ids(self) -> list[str]:
        return [event["id"] for event in self.body["batch"]]

    @property
    def types(self) -> list[str]:
        return [event["type"] for event in self.body["batch"]]


@dataclass
class FakeLangfuse:
    """Langfuse's ingestion endpoint on ``server``."""

    server: HTTPServer
    received: list[Received] = field(default_factory=list)
    #: Replies of the next requests, ``(status, body)``; then 207 with every event accepted.
    replies: deque[tuple[int, Any]] = field(default_factory=deque)
    #: Set when a request has arrived.
    arrived: threading.Event = field(default_factory=threading.Event)
    _hold: threading.Event | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.server.expect_request(PATH, method="POST").respond_with_handler(self._ingest)

    @property
    def host(self) -> str:
        return self.server.url_for("").rstrip("/")

    def reply(self, status: int, body: Any = None) -> None:
        self.replies.append((status, body))

    def hold(self) -> None:
        """The next request waits for :meth:`release` before it is answered."""
        self._hold = threading.Event()

    def release(self) -> None:
        if self._hold is not None:
            self._hold.set()

    def _ingest(self, request: Request) -> Response:
        body = json.loads(request.get_data())
        with self._lock:
            self.received.append(Received(request.headers.get("Authorization"), body))
            hold, self._hold = self._hold, None
            scripted = self.replies.popleft() if self.replies else None
        self.arrived.set()
        if hold is not None:
            hold.wait(timeout=60)
        if scripted is not None:
            status, reply = scripted
            return Response(json.dumps(reply or {}), status=status, mimetype="application/json")
        successes = [{"id": event["id"], "status": 201} for event in body["batch"]]
        reply = {"successes": successes, "errors": []}
        return Response(json.dumps(reply), status=207, mimetype="application/json")
