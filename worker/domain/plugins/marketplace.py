"""Client of Dify's marketplace: latest versions, package downloads, install counts.

Entries of the batch reply that lack what the upgrade needs are dropped (as Dify's validation
drops them), so the plugin is reported "not in the marketplace" rather than failing the others.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpx

from worker.domain import http

#: Plugin ids per batch request.
BATCH_SIZE = 100


@dataclass(frozen=True, kw_only=True)
class MarketplacePlugin:
    """The marketplace's latest release of a plugin."""

    plugin_id: str
    latest_version: str
    #: ``org/name:version@checksum`` of the latest package.
    latest_package_identifier: str
    #: ``active`` or ``deleted``.
    status: str = "active"


class Marketplace(http.HTTPAdapter):
    """Dify's marketplace at ``base_url`` (``MARKETPLACE_API_URL``)."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float,
        max_package_size: int,
        client: httpx.Client | None = None,
    ) -> None:
        super().__init__(timeout=timeout, client=client)
        self._base = base_url.rstrip("/")
        self.max_package_size = max_package_size

    def latest(self, plugin_ids: Iterable[str]) -> dict[str, MarketplacePlugin]:
        """The latest release of each of ``plugin_ids`` the marketplace knows, by plugin id.

        Raises
        ------
        TransientError
            The marketplace is unreachable or answers 408/429/5xx.
        PermanentError
            It answers another error, or not JSON.
        """
        ids = sorted(set(plugin_ids))
        found: dict[str, MarketplacePlugin] = {}
        for start in range(0, len(ids), BATCH_SIZE):
            chunk = ids[start : start + BATCH_SIZE]
            what = "marketplace batch of latest plugin versions"
            response = http.send(
                self._client, "POST", f"{self._base}/api/v1/plugins/batch", what=what,
                json={"plugin_ids": chunk},
            )  # fmt: skip
            data = http.json_object(response, what).get("data")
            plugins = data.get("plugins") if isinstance(data, dict) else None
            for entry in plugins if isinstance(plugins, list) else []:
                plugin = _plugin(entry)
                if plugin is not None and plugin.plugin_id in chunk:
                    found[plugin.plugin_id] = plugin
        return found

    def download(self, unique_identifier: str) -> bytes:
        """The package ``unique_identifier``, at most ``max_package_size`` bytes.

        Raises
        ------
        PermanentError
            Not found, or larger than allowed.
        TransientError
            The marketplace is unreachable or answers 408/429/5xx.
        """
        return http.download(
            self._client,
            f"{self._base}/api/v1/plugins/download",
            what=f"marketplace package {unique_identifier}",
            params={"unique_identifier": unique_identifier},
            max_bytes=self.max_package_size,
        )

    def record_install(self, unique_identifier: str) -> None:
        """Count one install of ``unique_identifier`` in the marketplace's statistics."""
        http.send(
            self._client, "POST", f"{self._base}/api/v1/stats/plugins/install_count",
            what="marketplace install count", json={"unique_identifier": unique_identifier},
        )  # fmt: skip


def _plugin(entry: Any) -> MarketplacePlugin | None:
    if not isinstance(entry, dict):
        return None
    keys = ("plugin_id", "latest_version", "latest_package_identifier")
    values = [entry.get(key) for key in keys]
    texts = [value for value in values if isinstance(value, str) and value]
    if len(texts) != len(keys):
        return None
    status = entry.get("status")
    return MarketplacePlugin(
        plugin_id=texts[0],
        latest_version=texts[1],
        latest_package_identifier=texts[2],
        status=status if isinstance(status, str) else "active",
    )
