"""Who may act: ``WORKER_DASHBOARD_TOKEN``, given once at sign-in (with a name for the action
log) or on each request as ``Authorization: Bearer <token>``.

Pages are readable by anyone who reaches the server (it binds 127.0.0.1 unless told otherwise);
actions are refused when the token is unset. Browser actions are POST forms carrying a CSRF
token (Flask-WTF's, bound to the signed session cookie, ``SameSite=Strict``); a request that
carries the token in its ``Authorization`` header needs none (a browser never adds that header
by itself).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

from flask import Request

from worker.dashboard.actions import Actor

#: Longest operator name kept in the action log.
MAX_NAME = 64


class NotAllowed(Exception):
    """The request may not act; the message says why (HTTP 403)."""


def session_secret(token: str | None) -> bytes:
    """The key that signs session cookies: derived from the token, so that every process
    serving the dashboard accepts the same sign-in; random when there is no token."""
    if token is None:
        return secrets.token_bytes(32)
    return hmac.new(token.encode(), b"pg-task-layer dashboard session", hashlib.sha256).digest()


def fingerprint(token: str) -> str:
    """What a signed-in session keeps of the token: changing the token signs everyone out."""
    return hmac.new(token.encode(), b"pg-task-layer dashboard sign-in", hashlib.sha256).hexdigest()


def token_matches(given: str, token: str | None) -> bool:
    """Whether ``given`` is the token (compared in constant time); never when it is unset."""
    return token is not None and hmac.compare_digest(given.encode(), token.encode())


def bearer(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer`` header, if any."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def actor(request: Request, session: dict[str, Any] | Any, token: str | None) -> Actor:
    """Who acts with ``request``.

    Raises
    ------
    NotAllowed
        The token is unset, or the request is neither signed in nor carrying the token.
    """
    if token is None:
        raise NotAllowed("actions are disabled: WORKER_DASHBOARD_TOKEN is not set")
    given = bearer(request)
    if given is not None:
        if not token_matches(given, token):
            raise NotAllowed("wrong token")
        name = request.headers.get("X-Dashboard-Operator", "api")[:MAX_NAME]
        return Actor(name=name or "api", remote_addr=request.remote_addr)
    if session.get("fingerprint") != fingerprint(token):
        raise NotAllowed("sign in with WORKER_DASHBOARD_TOKEN first")
    return Actor(name=str(session.get("operator", "operator")), remote_addr=request.remote_addr)


def operator_name(value: str) -> str:
    """The name given at sign-in, printable and short; refused when empty."""
    name = "".join(ch for ch in value if ch.isprintable()).strip()[:MAX_NAME]
    if not name:
        raise NotAllowed("give your name: it goes into the action log")
    return name
