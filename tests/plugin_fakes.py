"""A fake plugin daemon and a fake marketplace, served over real HTTP by pytest-httpserver.

They keep state (installed plugins per workspace, packages the daemon has, the marketplace's
latest releases and packages) and log every request as a short tuple, so that tests can assert
the exact calls: ``("daemon", "GET", "list", "page=1")``, ``("market", "POST", "batch", [...])``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

API_KEY = "test-daemon-key"
_DAEMON = re.compile(r"^/daemon/plugin/(?P<tenant>[^/]+)/management/(?P<action>.+)$")


def uid(plugin_id: str, version: str) -> str:
    """A package's unique identifier, ``org/name:version@checksum``."""
    return f"{plugin_id}:{version}@{abs(hash((plugin_id, version))):x}"


def entry(plugin_id: str, version: str, *, source: str = "marketplace") -> dict[str, Any]:
    """A daemon's ``PluginEntity`` as Dify's model requires it."""
    return {
        "id": f"install-{plugin_id}", "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:00:00Z", "tenant_id": "t", "endpoints_setups": 0,
        "endpoints_active": 0, "runtime_type": "local", "source": source, "meta": {},
        "plugin_id": plugin_id, "plugin_unique_identifier": uid(plugin_id, version),
        "version": version, "checksum": "c", "name": plugin_id.split("/")[1],
        "installation_id": f"i-{plugin_id}",
        "declaration": {"version": version, "author": plugin_id.split("/")[0],
                        "name": plugin_id.split("/")[1], "category": "tool"},
    }  # fmt: skip


@dataclass
class FakePluginServices:
    """The daemon under ``/daemon`` and the marketplace under ``/market`` of one server."""

    server: HTTPServer
    #: Installations per workspace (daemon entries).
    installed: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    #: Package ids the daemon can install without an upload.
    daemon_packages: set[str] = field(default_factory=set)
    #: The marketplace's latest release per plugin id.
    latest: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Package bytes the marketplace serves.
    packages: dict[str, bytes] = field(default_factory=dict)
    #: Replies of the next batch calls to give as HTTP 503.
    batch_failures: int = 0
    install_count_status: int = 200
    #: Package ids whose upgrade the daemon refuses.
    refused: set[str] = field(default_factory=set)
    requests: list[tuple[Any, ...]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.server.expect_request(re.compile(r"^/daemon/")).respond_with_handler(self._daemon)
        self.server.expect_request(re.compile(r"^/market/")).respond_with_handler(self._market)

    @property
    def daemon_url(self) -> str:
        return self.server.url_for("/daemon")

    @property
    def marketplace_url(self) -> str:
        return self.server.url_for("/market")

    def install(self, tenant_id: str, *entries: dict[str, Any]) -> None:
        self.installed.setdefault(tenant_id, []).extend(entries)
        self.daemon_packages.update(
            e["plugin_unique_identifier"] for e in entries if "plugin_unique_identifier" in e
        )

    def release(self, plugin_id: str, version: str, *, known: bool = True, **more: Any) -> str:
        """The marketplace's latest ``version``; ``known``: the daemon has the package."""
        package = uid(plugin_id, version)
        self.latest[plugin_id] = {
            "name": plugin_id.split("/")[1], "org": plugin_id.split("/")[0],
            "plugin_id": plugin_id, "icon": "", "label": {"en_US": plugin_id},
            "brief": {"en_US": ""}, "resource": {"memory": 1}, "latest_version": version,
            "latest_package_identifier": package, "status": "active", "deprecated_reason": "",
            "alternative_plugin_id": "", **more,
        }  # fmt: skip
        self.packages[package] = f"package {package}".encode()
        if known:
            self.daemon_packages.add(package)
        return package

    def calls(self, service: str | None = None) -> list[tuple[Any, ...]]:
        return [r for r in self.requests if service is None or r[0] == service]

    # -- daemon ---------------------------------------------------------------------------------

    def _daemon(self, request: Request) -> Response:
        if request.headers.get("X-Api-Key") != API_KEY:
            return Response("unauthorized", status=401)
        match = _DAEMON.match(request.path)
        assert match, request.path
        tenant, action = match["tenant"], match["action"]
        if action == "list":
            self.requests.append(("daemon", "GET", "list", request.args["page"]))
            return self._list(tenant, int(request.args["page"]), int(request.args["page_size"]))
        if action == "fetch/manifest":
            package = request.args["plugin_unique_identifier"]
            self.requests.append(("daemon", "GET", "manifest", package))
            if package not in self.daemon_packages:
                return _envelope(None, code=-1, error=("PluginNotFoundError", "no such package"))
            return _envelope({"version": package.split(":")[1].split("@")[0]})
        if action == "install/upload/package":
            body = request.files["dify_pkg"].read()
            package = next(p for p, data in self.packages.items() if data == body)
            self.requests.append(
                ("daemon", "POST", "upload", package, request.form["verify_signature"])
            )
            self.daemon_packages.add(package)
            return _envelope({"unique_identifier": package, "manifest": {}, "verification": None})
        assert action == "install/upgrade", action
        body = request.get_json()
        self.requests.append(
            ("daemon", "POST", "upgrade", body["original_plugin_unique_identifier"],
             body["new_plugin_unique_identifier"])
        )  # fmt: skip
        assert body["source"] == "marketplace"
        assert body["meta"] == {"plugin_unique_identifier": body["new_plugin_unique_identifier"]}
        if body["new_plugin_unique_identifier"] in self.refused:
            return _envelope(None, code=-1, error=("PluginDaemonBadRequestError", "refused"))
        self._installed_now(tenant, body["new_plugin_unique_identifier"])
        return _envelope({"all_installed": False, "task_id": f"task-{len(self.requests)}"})

    def _list(self, tenant: str, page: int, size: int) -> Response:
        entries = self.installed.get(tenant, [])
        return _envelope({"list": entries[(page - 1) * size : page * size], "total": len(entries)})

    def _installed_now(self, tenant: str, package: str) -> None:
        plugin_id, _, rest = package.partition(":")
        for installed in self.installed.get(tenant, []):
            if installed.get("plugin_id") == plugin_id:
                installed["plugin_unique_identifier"] = package
                installed["version"] = rest.split("@")[0]

    # -- marketplace ----------------------------------------------------------------------------

    def _market(self, request: Request) -> Response:
        path = request.path.removeprefix("/market")
        if path == "/api/v1/plugins/batch":
            ids = request.get_json()["plugin_ids"]
            self.requests.append(("market", "POST", "batch", ids))
            if self.batch_failures:
                self.batch_failures -= 1
                return Response("overloaded", status=503)
            plugins = [self.latest[i] for i in ids if i in self.latest]
            return Response(json.dumps({"data": {"plugins": plugins}}), 200,
                            content_type="application/json")  # fmt: skip
        if path == "/api/v1/plugins/download":
            package = request.args["unique_identifier"]
            self.requests.append(("market", "GET", "download", package))
            if package not in self.packages:
                return Response("file not found", status=404)
            data = self.packages[package]  # streamed: no Content-Length to trust
            chunks = (data[i : i + 512] for i in range(0, len(data), 512))
            return Response(chunks, 200, content_type="application/octet-stream")
        assert path == "/api/v1/stats/plugins/install_count", path
        package = request.get_json()["unique_identifier"]
        self.requests.append(("market", "POST", "install_count", package))
        return Response("{}", self.install_count_status, content_type="application/json")


def _envelope(data: Any, *, code: int = 0, error: tuple[str, str] | None = None) -> Response:
    message = json.dumps({"error_type": error[0], "message": error[1]}) if error else ""
    return Response(
        json.dumps({"code": code, "message": message, "data": data}), 200,
        content_type="application/json",
    )  # fmt: skip
