"""Plugins: auto-upgrade of a workspace's marketplace plugins, and the HTTP clients it needs.

``autoupgrade`` holds the services, ``daemon`` and ``marketplace`` the clients of Dify's plugin
daemon and marketplace, ``versions`` the version comparison. :func:`connect` builds both clients
from the settings.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from worker.config import Settings
from worker.domain.errors import PermanentError
from worker.domain.plugins.daemon import PluginDaemon
from worker.domain.plugins.marketplace import Marketplace


@contextlib.contextmanager
def connect(settings: Settings) -> Iterator[tuple[PluginDaemon, Marketplace]]:
    """The plugin daemon and marketplace clients of ``settings``, closed on exit.

    Raises
    ------
    PermanentError
        ``MARKETPLACE_ENABLED`` is false: Dify upgrades only from the marketplace.
    """
    if not settings.marketplace_enabled:
        raise PermanentError("MARKETPLACE_ENABLED is false: plugins upgrade from the marketplace")
    timeout = settings.http_timeout
    with (
        PluginDaemon(
            settings.plugin_daemon_url,
            settings.plugin_daemon_key.get_secret_value(),
            timeout=timeout,
        ) as daemon,
        Marketplace(
            settings.marketplace_api_url,
            timeout=timeout,
            max_package_size=settings.plugin_max_package_size,
        ) as marketplace,
    ):
        yield daemon, marketplace
