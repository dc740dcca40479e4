"""Client of Dify's plugin daemon: list a workspace's plugins, upload a package, upgrade.

Every request carries ``X-Api-Key: PLUGIN_DAEMON_KEY``. Every reply is an envelope
``{"code": 0, "message": "", "data": ...}``; ``code != 0`` is an error whose ``message`` is
usually a JSON object ``{"error_type", "message"}``. Listing is lenient: an installation the
client cannot read is reported beside the others, never hiding them (Dify validates the whole
list and loses every plugin of the workspace to one malformed declaration).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from worker.domain import http
from worker.domain.errors import PermanentError, TransientError

#: Installations per page (Dify's).
PAGE_SIZE = 256
#: Pages read at most (PAGE_SIZE x this installations), a guard against a daemon that pages
#: for ever.
MAX_PAGES = 100
#: Daemon error types that may pass when asked again.
TRANSIENT_ERROR_TYPES = frozenset({"PluginDaemonInternalServerError", "PluginDaemonInnerError"})


class DaemonError(PermanentError):
    """The plugin daemon refused the request."""

    def __init__(self, message: str, *, error_type: str = "") -> None:
        super().__init__(message)
        self.error_type = error_type


class DaemonUnavailable(TransientError):
    """The plugin daemon failed in a way that may pass."""


@dataclass(frozen=True, kw_only=True)
class InstalledPlugin:
    """What the upgrade needs of one installation."""

    #: ``org/name``.
    plugin_id: str
    version: str
    #: ``org/name:version@checksum``.
    unique_identifier: str
    #: ``marketplace``, ``github``, ``package`` or ``remote``.
    source: str


@dataclass(frozen=True, kw_only=True)
class Installations:
    """A workspace's installations, and those the daemon described in a way we cannot read."""

    plugins: list[InstalledPlugin] = field(default_factory=list)
    #: ``(plugin id or None, what is wrong)`` per unreadable entry.
    malformed: list[tuple[str | None, str]] = field(default_factory=list)


class PluginDaemon(http.HTTPAdapter):
    """Dify's plugin daemon at ``base_url`` (``PLUGIN_DAEMON_URL``)."""

    def __init__(
        self, base_url: str, api_key: str, *, timeout: float, client: httpx.Client | None = None
    ) -> None:
        super().__init__(timeout=timeout, client=client)
        self._base = base_url.rstrip("/")
        self._headers = {"X-Api-Key": api_key}

    def list_plugins(self, tenant_id: str) -> Installations:
        """Every installation of ``tenant_id``, page after page until the daemon's total."""
        found = Installations()
        seen = 0
        for page in range(1, MAX_PAGES + 1):
            data = self._call(
                "GET", f"plugin/{tenant_id}/management/list", what="plugin list",
                params={"page": page, "page_size": PAGE_SIZE, "response_type": "paged"},
            )  # fmt: skip
            entries, total = _page(data)
            for entry in entries:
                _read_entry(entry, found)
            seen += len(entries)
            if not entries or seen >= total:
                break
        return found

    def knows(self, tenant_id: str, unique_identifier: str) -> bool:
        """Whether the daemon has the package ``unique_identifier`` (it can install it)."""
        try:
            self._call(
                "GET", f"plugin/{tenant_id}/management/fetch/manifest", what="plugin manifest",
                params={"plugin_unique_identifier": unique_identifier},
            )  # fmt: skip
        except DaemonError:
            return False
        return True

    def upload(
        self, tenant_id: str, package: bytes, *, unique_identifier: str, verify_signature: bool
    ) -> None:
        """Upload a package the daemon does not have.

        Raises
        ------
        DaemonError
            The daemon refused it, or read another identifier out of it.
        """
        data = self._call(
            "POST", f"plugin/{tenant_id}/management/install/upload/package",
            what="package upload",
            files={"dify_pkg": ("plugin.difypkg", package, "application/octet-stream")},
            data={"verify_signature": "true" if verify_signature else "false"},
        )  # fmt: skip
        uploaded = data.get("unique_identifier") if isinstance(data, dict) else None
        if uploaded != unique_identifier:
            raise DaemonError(
                f"the uploaded package is {uploaded!r}, not the expected {unique_identifier!r}"
            )

    def upgrade(self, tenant_id: str, *, original: str, new: str) -> str:
        """Ask the daemon to replace ``original`` by ``new``; return its install task's id (the
        daemon installs asynchronously)."""
        data = self._call(
            "POST", f"plugin/{tenant_id}/management/install/upgrade", what="plugin upgrade",
            json={
                "original_plugin_unique_identifier": original,
                "new_plugin_unique_identifier": new,
                "source": "marketplace",
                "meta": {"plugin_unique_identifier": new},
            },
        )  # fmt: skip
        return str(data.get("task_id", "")) if isinstance(data, dict) else ""

    def _call(self, method: str, path: str, *, what: str, **options: Any) -> Any:
        what = f"plugin daemon {what}"
        try:
            response = http.send(
                self._client, method, f"{self._base}/{path}", what=what,
                headers=self._headers, **options,
            )  # fmt: skip
        except TransientError as exc:
            raise DaemonUnavailable(str(exc)) from exc
        except PermanentError as exc:
            raise DaemonError(str(exc)) from exc
        return _unwrap(http.json_object(response, what), what)


def _unwrap(body: Mapping[str, Any], what: str) -> Any:
    """The ``data`` of a daemon envelope, or its error."""
    code = body.get("code")
    if code != 0:
        error_type, message = _error_of(body.get("message"))
        error = f"{what}: {error_type or 'error'} (code {code}): {message}".rstrip(": ")
        if error_type in TRANSIENT_ERROR_TYPES:
            raise DaemonUnavailable(error)
        raise DaemonError(error, error_type=error_type)
    if body.get("data") is None:
        raise DaemonError(f"{what}: the reply has no data")
    return body["data"]


def _error_of(message: object) -> tuple[str, str]:
    text = str(message or "")
    try:
        parsed = json.loads(text)
    except ValueError:
        return "", text
    if not isinstance(parsed, dict):
        return "", text
    return str(parsed.get("error_type", "")), str(parsed.get("message", ""))


def _page(data: Any) -> tuple[list[Any], int]:
    if not isinstance(data, dict) or not isinstance(data.get("list"), list):
        raise DaemonError("plugin daemon plugin list: the reply has no list")
    total = data.get("total")
    return data["list"], total if isinstance(total, int) else len(data["list"])


def _read_entry(entry: Any, found: Installations) -> None:
    fields = ("plugin_id", "version", "plugin_unique_identifier", "source")
    values = {name: entry.get(name) if isinstance(entry, dict) else None for name in fields}
    missing = [name for name, value in values.items() if not isinstance(value, str) or not value]
    if missing:
        plugin_id = values["plugin_id"] if isinstance(values["plugin_id"], str) else None
        found.malformed.append((plugin_id, f"the daemon's entry lacks {', '.join(missing)}"))
        return
    found.plugins.append(
        InstalledPlugin(
            plugin_id=str(values["plugin_id"]),
            version=str(values["version"]),
            unique_identifier=str(values["plugin_unique_identifier"]),
            source=str(values["source"]),
        )
    )
