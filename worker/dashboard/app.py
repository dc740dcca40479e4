"""The dashboard's Flask application: pages, actions, sign-in and ``/metrics``.

Flask (with jinja2, already ours for mail) renders on the server; Flask-WTF provides the CSRF
protection of the action forms; waitress serves it (``worker.dashboard.serving``). The page
assets (one stylesheet, one small script that refreshes the overview) are files of this package:
nothing is fetched from the internet.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import Flask, Response, flash, redirect, render_template, request, session, url_for
from flask_wtf.csrf import CSRFError, CSRFProtect
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from werkzeug.wrappers import Response as BaseResponse

from worker import queues
from worker.config import Settings
from worker.dashboard import actions, auth, chart, jobs, metrics, overview, pages
from worker.dashboard.store import Store
from worker.jobs import admin

logger = logging.getLogger(__name__)

#: Seconds between two refreshes of the overview in the browser.
REFRESH_SECONDS = 5

_ACTION_ROUTES = (
    ("/jobs/<target>/retry", "retry"),
    ("/jobs/<target>/cancel", "cancel"),
    ("/documents/<target>/recover", "recover"),
    ("/queues/<target>/pause", "pause"),
    ("/queues/<target>/resume", "resume"),
)


def create_app(database_url: str, settings: Settings, *, store: Store | None = None) -> Flask:
    """The dashboard on ``database_url``; ``settings.dashboard_token`` enables actions."""
    app = Flask(__name__)
    token = settings.dashboard_token.get_secret_value() if settings.dashboard_token else None
    app.config.update(
        SECRET_KEY=auth.session_secret(token),
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_NAME="tl_dashboard",
        WTF_CSRF_CHECK_DEFAULT=False,
        WTF_CSRF_TIME_LIMIT=None,  # as long as the signed-in session
        store=store or Store(database_url, connect_timeout=settings.db_connect_timeout),
        settings=settings,
        token=token,
    )
    csrf = CSRFProtect(app)
    registry = metrics.registry(app.config["store"])
    _pages(app)
    _actions(app, csrf)

    @app.get("/metrics")
    def metrics_page() -> Response:
        return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)

    @app.get("/healthz")
    def healthz() -> Response:
        _store().scalar("ping")
        return Response("ok\n", mimetype="text/plain")

    @app.context_processor
    def common() -> dict[str, Any]:
        return {
            "signed_in": _signed_in(),
            "actions_enabled": app.config["token"] is not None,
            "operator": session.get("operator"),
            "queue_names": queues.ALL_QUEUES,
            "statuses": jobs.STATUSES,
        }

    @app.errorhandler(jobs.InvalidFilter)
    def bad_filter(exc: jobs.InvalidFilter) -> tuple[str, int]:
        return render_template("error.html", message=str(exc)), 400

    @app.errorhandler(sa.exc.OperationalError)
    def database_down(exc: sa.exc.OperationalError) -> tuple[str, int]:
        logger.warning("dashboard: database unreachable: %s", exc.orig,
                       extra={"action": "dashboard_db_error"})  # fmt: skip
        return render_template("error.html", message="the database does not answer"), 503

    return app


def _store() -> Store:
    from flask import current_app

    store: Store = current_app.config["store"]
    return store


def _settings() -> Settings:
    from flask import current_app

    settings: Settings = current_app.config["settings"]
    return settings


def _token() -> str | None:
    from flask import current_app

    token: str | None = current_app.config["token"]
    return token


def _signed_in() -> bool:
    token = _token()
    return token is not None and session.get("fingerprint") == auth.fingerprint(token)


def _now(connection: Any) -> datetime:
    now: datetime = connection.execute(sa.text("SELECT now()")).scalar_one()
    return now


def _pages(app: Flask) -> None:
    @app.get("/")
    def overview_page() -> str:
        with _store().read() as db:
            data = overview.read(db, _now(db))
        template = "_live.html" if request.args.get("partial") else "overview.html"
        return render_template(
            template,
            view=data,
            chart=chart.throughput_svg(data.minutes),
            refresh=REFRESH_SECONDS,
            page="overview",
        )

    @app.get("/jobs")
    def jobs_page() -> str:
        wanted = jobs.JobFilter.parse(request.args)
        with _store().read() as db:
            found = jobs.page(db, wanted)
        return render_template("jobs.html", wanted=wanted, found=found, page="jobs")

    @app.get("/jobs/<int:job_id>")
    def job_page(job_id: int) -> tuple[str, int] | str:
        try:
            with _store().read() as db:
                details = pages.job(db, job_id)
        except admin.JobCommandError as exc:
            return render_template("error.html", message=str(exc)), 404
        return render_template("job.html", job=details, page="jobs")

    @app.get("/knowledge")
    def knowledge_page() -> str:
        with _store().read() as db:
            data = pages.knowledge(db, _settings(), _now(db))
        return render_template("knowledge.html", data=data, page="knowledge")

    @app.get("/schedule")
    def schedule_page() -> str:
        with _store().read() as db:
            data = pages.scheduled(db, _settings(), _now(db))
        return render_template("schedule.html", data=data, page="schedule")

    @app.get("/mail")
    def mail_page() -> str:
        with _store().read() as db:
            data = pages.mail(db)
        return render_template("mail.html", data=data, page="mail")

    @app.get("/actions")
    def actions_page() -> str:
        with _store().read() as db:
            rows = pages.recent_actions(db)
        return render_template("actions.html", rows=rows, page="actions")


def _actions(app: Flask, csrf: CSRFProtect) -> None:
    @app.before_request
    def protect() -> None:
        if request.method != "POST":
            return
        if (request.endpoint or "").startswith("act_"):
            auth.actor(request, session, _token())  # no token, no sign-in: 403 before all else
        if auth.bearer(request) is None:
            csrf.protect()

    @app.errorhandler(CSRFError)
    def csrf_refused(exc: CSRFError) -> tuple[str, int]:
        logger.warning("dashboard: %s refused: %s", request.path, exc.description,
                       extra={"action": "dashboard_csrf_refused"})  # fmt: skip
        return render_template("error.html", message=f"refused: {exc.description}"), 400

    @app.errorhandler(auth.NotAllowed)
    def not_allowed(exc: auth.NotAllowed) -> tuple[str, int]:
        logger.warning("dashboard: %s %s refused: %s", request.method, request.path, exc,
                       extra={"action": "dashboard_refused"})  # fmt: skip
        return render_template("error.html", message=f"refused: {exc}"), 403

    _sign_in(app)
    for rule, action in _ACTION_ROUTES:
        app.add_url_rule(
            rule, endpoint=f"act_{action}", view_func=_act_view(action), methods=["POST"]
        )


def _sign_in(app: Flask) -> None:
    @app.route("/login", methods=["GET", "POST"])
    def login() -> str | BaseResponse:
        if request.method == "POST":
            token = _token()
            if token is None:
                raise auth.NotAllowed("actions are disabled: WORKER_DASHBOARD_TOKEN is not set")
            if not auth.token_matches(request.form.get("token", ""), token):
                raise auth.NotAllowed("wrong token")
            session["operator"] = auth.operator_name(request.form.get("operator", ""))
            session["fingerprint"] = auth.fingerprint(token)
            flash(f"signed in as {session['operator']}")
            return redirect(_local(request.form.get("next")))
        return render_template("login.html", next=request.args.get("next", "/"), page="login")

    @app.post("/logout")
    def logout() -> BaseResponse:
        session.clear()
        return redirect(url_for("overview_page"))


def _act_view(action: str) -> Any:
    def act(target: str) -> BaseResponse | tuple[str, int]:
        who = auth.actor(request, session, _token())
        try:
            outcome = actions.perform(_store(), who, action, target)
        except actions.ActionRefused as exc:
            if auth.bearer(request) is not None:
                return render_template("error.html", message=f"refused: {exc}"), 409
            flash(f"{action} {target}: refused: {exc}", "error")
        else:
            flash(f"{action} {target}: {outcome}")
        return redirect(_local(request.form.get("next")))

    act.__name__ = f"act_{action}"
    return act


def _local(target: str | None) -> str:
    """``target`` if it is a path of this site, else the overview (no open redirect)."""
    if not target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target
