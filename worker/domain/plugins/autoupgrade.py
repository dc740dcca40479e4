"""Plugin auto-upgrade: which workspaces are due, and one workspace's check.

Due-ness is row state: a strategy is due when its last check (``last_checked_at``, else its
creation) is older than the last occurrence of its ``upgrade_time_of_day`` (seconds of the UTC
day). Any later check therefore catches a missed time up, once: a fleet down at 03:00 and back
at 05:00 checks the 03:00 workspaces that day, and a check done today is not repeated.

One workspace's check re-reads its strategy (the row wins over the job's arguments), lists its
plugins from the daemon, asks the marketplace for their latest versions in one batch, and
upgrades each candidate as Dify 1.14 does (the package is downloaded and uploaded first when the
daemon does not have it). Each plugin gets an outcome; one plugin's failure does not stop the
others. The daemon's installed versions are the state, so a re-run finds what is done.
"""

from __future__ import annotations

import enum
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy import orm

from worker.domain.errors import DomainError, PermanentError, TransientError
from worker.domain.models import (
    AutoUpgradeMode,
    AutoUpgradeStrategySetting,
    TenantPluginAutoUpgradeStrategy,
)
from worker.domain.plugins import versions
from worker.domain.plugins.daemon import Installations, InstalledPlugin
from worker.domain.plugins.marketplace import MarketplacePlugin
from worker.domain.uow import UnitOfWork

logger = logging.getLogger(__name__)

#: Plugins the daemon installed from the marketplace: the only ones upgraded.
MARKETPLACE_SOURCE = "marketplace"


class PluginDaemonPort(Protocol):
    """What the upgrade needs of the plugin daemon (``daemon.PluginDaemon``)."""

    def list_plugins(self, tenant_id: str) -> Installations: ...
    def knows(self, tenant_id: str, unique_identifier: str) -> bool: ...
    def upload(
        self, tenant_id: str, package: bytes, *, unique_identifier: str, verify_signature: bool
    ) -> None: ...
    def upgrade(self, tenant_id: str, *, original: str, new: str) -> str: ...


class MarketplacePort(Protocol):
    """What the upgrade needs of the marketplace (``marketplace.Marketplace``)."""

    def latest(self, plugin_ids: Sequence[str]) -> dict[str, MarketplacePlugin]: ...
    def download(self, unique_identifier: str) -> bytes: ...
    def record_install(self, unique_identifier: str) -> None: ...


class Action(enum.StrEnum):
    """What became of one plugin."""

    #: The daemon accepted the upgrade (it installs asynchronously: ``daemon_task_id``).
    UPGRADED = "upgraded"
    #: Nothing to do: not a candidate, up to date, or not allowed by the strategy.
    SKIPPED = "skipped"
    #: The upgrade was attempted and refused or broken; ``reason`` says why.
    FAILED = "failed"


class UpgradesInterrupted(TransientError):
    """Some plugins could not be upgraded because the daemon or the marketplace failed."""


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """One plugin's outcome, as it goes into the job's result."""

    plugin_id: str | None
    from_version: str | None
    to_version: str | None
    action: Action
    reason: str
    daemon_task_id: str | None = None
    #: The failure may pass (the job retries).
    transient: bool = False

    def as_dict(self) -> dict[str, Any]:
        """``{plugin_id, from, to, action, reason, daemon_task_id}``."""
        return {
            "plugin_id": self.plugin_id,
            "from": self.from_version,
            "to": self.to_version,
            "action": self.action.value,
            "reason": self.reason,
            "daemon_task_id": self.daemon_task_id,
        }


@dataclass(frozen=True, kw_only=True)
class Strategy:
    """A workspace's upgrade strategy (Dify's task arguments, or its row)."""

    tenant_id: str
    setting: AutoUpgradeStrategySetting
    mode: AutoUpgradeMode
    exclude_plugins: tuple[str, ...] = ()
    include_plugins: tuple[str, ...] = ()

    @classmethod
    def of_row(cls, row: TenantPluginAutoUpgradeStrategy) -> Strategy:
        """The strategy a row holds."""
        return cls(
            tenant_id=str(row.tenant_id),
            setting=row.strategy_setting,
            mode=row.upgrade_mode,
            exclude_plugins=tuple(row.exclude_plugins or ()),
            include_plugins=tuple(row.include_plugins or ()),
        )

    @classmethod
    def of_arguments(
        cls,
        *,
        tenant_id: str,
        strategy_setting: str,
        upgrade_mode: str,
        exclude_plugins: Sequence[str],
        include_plugins: Sequence[str],
    ) -> Strategy:
        """The strategy Dify's task arguments describe.

        Raises
        ------
        PermanentError
            A setting or mode Dify does not define.
        """
        try:
            return cls(
                tenant_id=tenant_id,
                setting=AutoUpgradeStrategySetting(strategy_setting),
                mode=AutoUpgradeMode(upgrade_mode),
                exclude_plugins=tuple(exclude_plugins),
                include_plugins=tuple(include_plugins),
            )
        except ValueError as exc:
            raise PermanentError(f"invalid upgrade strategy: {exc}") from None

    def selects(self, plugin_id: str) -> bool:
        """Whether the mode makes ``plugin_id`` a candidate (``partial`` with none: nothing)."""
        if self.mode is AutoUpgradeMode.PARTIAL:
            return plugin_id in self.include_plugins
        if self.mode is AutoUpgradeMode.EXCLUDE:
            return plugin_id not in self.exclude_plugins
        return True


# -- due workspaces ----------------------------------------------------------------------------


def due_strategies(
    session: orm.Session, *, now: datetime, limit: int
) -> list[TenantPluginAutoUpgradeStrategy]:
    """Up to ``limit`` enabled strategies whose time of day passed since their last check,
    locked (``SKIP LOCKED``: two concurrent checks share the work, never repeat it)."""
    model = TenantPluginAutoUpgradeStrategy
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    today = sa.literal(midnight) + model.upgrade_time_of_day * sa.literal_column(
        "interval '1 second'"
    )
    last_occurrence = sa.case(
        (today > sa.literal(now), today - sa.literal(timedelta(days=1))), else_=today
    )
    query = (
        sa.select(model)
        .where(
            model.strategy_setting != AutoUpgradeStrategySetting.DISABLED,
            sa.func.coalesce(model.last_checked_at, model.created_at) < last_occurrence,
        )
        .order_by(model.upgrade_time_of_day, model.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list(session.scalars(query))


def check_due(
    uow: UnitOfWork,
    *,
    now: datetime,
    limit: int,
    defer: Callable[[orm.Session, dict[str, Any]], None],
) -> list[str]:
    """Hand each due workspace's check to ``defer`` (with Dify's task arguments) and mark it
    checked at ``now``, in the unit of work's transaction; return their tenant ids.

    The marks and the deferrals commit together, with the caller's (the job's) success: a
    workspace is never marked without its check, nor checked twice for one time of day.
    """
    session = uow.session
    due = due_strategies(session, now=now, limit=limit)
    for row in due:
        defer(session, dify_arguments(row))
        row.last_checked_at = now
    if len(due) == limit:
        logger.info(
            "%d workspaces due for a plugin check: the others wait for the next tick",
            limit,
            extra={"action": "plugin_check_batch_full"},
        )
    return [str(row.tenant_id) for row in due]


def dify_arguments(row: TenantPluginAutoUpgradeStrategy) -> dict[str, Any]:
    """Dify's arguments of ``process_tenant_plugin_autoupgrade_check_task`` for a strategy."""
    return {
        "tenant_id": str(row.tenant_id),
        "strategy_setting": row.strategy_setting.value,
        "upgrade_time_of_day": row.upgrade_time_of_day,
        "upgrade_mode": row.upgrade_mode.value,
        "exclude_plugins": list(row.exclude_plugins or []),
        "include_plugins": list(row.include_plugins or []),
    }


# -- one workspace -----------------------------------------------------------------------------


def check_tenant(
    uow: UnitOfWork,
    daemon: PluginDaemonPort,
    marketplace: MarketplacePort,
    given: Strategy,
    *,
    verify_signature: bool = False,
) -> list[dict[str, Any]]:
    """Upgrade the workspace's marketplace plugins its strategy allows; one outcome each.

    Parameters
    ----------
    given:
        The strategy the job was deferred with; the workspace's row, if any, wins.
    verify_signature:
        Ask the daemon to verify the signature of uploaded packages.

    Raises
    ------
    TransientError
        The daemon or the marketplace is unreachable (nothing was done), or was for some
        plugins (:class:`UpgradesInterrupted`, after the others were upgraded).
    """
    strategy = _current(uow, given)
    if strategy.setting is AutoUpgradeStrategySetting.DISABLED:
        logger.info(
            "workspace %s: plugin auto-upgrade is disabled; nothing to check",
            strategy.tenant_id,
            extra={"action": "plugin_upgrade_disabled", "tenant_id": strategy.tenant_id},
        )
        return []
    installed = daemon.list_plugins(strategy.tenant_id)
    outcomes = [
        Outcome(plugin_id=plugin_id, from_version=None, to_version=None,
                action=Action.SKIPPED, reason=reason)
        for plugin_id, reason in installed.malformed
    ]  # fmt: skip
    chosen = [
        plugin for plugin in installed.plugins
        if plugin.source == MARKETPLACE_SOURCE and strategy.selects(plugin.plugin_id)
    ]  # fmt: skip
    if chosen:
        offers = marketplace.latest([plugin.plugin_id for plugin in chosen])
        for plugin in chosen:
            offer = offers.get(plugin.plugin_id)
            outcome = _upgrade(daemon, marketplace, strategy, plugin, offer, verify_signature)
            _log(strategy.tenant_id, outcome)
            outcomes.append(outcome)
    interrupted = [o for o in outcomes if o.transient]
    if interrupted:
        raise UpgradesInterrupted(
            f"workspace {strategy.tenant_id}: "
            + "; ".join(f"{o.plugin_id}: {o.reason}" for o in interrupted)
        )
    return [outcome.as_dict() for outcome in outcomes]


def _current(uow: UnitOfWork, given: Strategy) -> Strategy:
    try:
        tenant_id = uuid.UUID(given.tenant_id)
    except ValueError:
        raise PermanentError(f"tenant id {given.tenant_id!r} is not a UUID") from None
    with uow.step() as session:
        row = session.scalars(
            sa.select(TenantPluginAutoUpgradeStrategy).where(
                TenantPluginAutoUpgradeStrategy.tenant_id == tenant_id
            )
        ).first()
        return Strategy.of_row(row) if row is not None else given


def _upgrade(
    daemon: PluginDaemonPort,
    marketplace: MarketplacePort,
    strategy: Strategy,
    plugin: InstalledPlugin,
    offer: MarketplacePlugin | None,
    verify_signature: bool,
) -> Outcome:
    def outcome(action: Action, reason: str, **more: Any) -> Outcome:
        return Outcome(
            plugin_id=plugin.plugin_id, from_version=plugin.version,
            to_version=offer.latest_version if offer else None, action=action, reason=reason,
            **more,
        )  # fmt: skip

    if offer is None:
        return outcome(Action.SKIPPED, "not in the marketplace")
    if offer.status != "active":
        return outcome(Action.SKIPPED, f"the marketplace lists it as {offer.status}")
    if offer.latest_package_identifier == plugin.unique_identifier:
        return outcome(Action.SKIPPED, "the marketplace's latest package is installed")
    allowed, reason = versions.upgrade_reason(
        strategy.setting, plugin.version, offer.latest_version
    )
    if not allowed:
        return outcome(Action.SKIPPED, reason)
    new = offer.latest_package_identifier
    try:
        if not daemon.knows(strategy.tenant_id, new):
            package = marketplace.download(new)
            daemon.upload(
                strategy.tenant_id, package, unique_identifier=new,
                verify_signature=verify_signature,
            )  # fmt: skip
        task_id = daemon.upgrade(strategy.tenant_id, original=plugin.unique_identifier, new=new)
    except DomainError as exc:  # recorded per plugin: the others go on
        return outcome(Action.FAILED, str(exc), transient=isinstance(exc, TransientError))
    _count_install(marketplace, new)
    return outcome(Action.UPGRADED, reason, daemon_task_id=task_id)


def _count_install(marketplace: MarketplacePort, unique_identifier: str) -> None:
    """The marketplace's install statistics: best effort, never in the way of an upgrade."""
    try:
        marketplace.record_install(unique_identifier)
    except DomainError as exc:
        logger.warning(
            "install count of %s not recorded: %s",
            unique_identifier,
            exc,
            extra={"action": "plugin_install_count_failed"},
        )


def _log(tenant_id: str, outcome: Outcome) -> None:
    level = logging.WARNING if outcome.action is Action.FAILED else logging.INFO
    logger.log(
        level,
        "workspace %s: plugin %s %s (%s)",
        tenant_id, outcome.plugin_id, outcome.action.value, outcome.reason,
        extra={"action": f"plugin_{outcome.action.value}", "tenant_id": tenant_id,
               "plugin_id": outcome.plugin_id},
    )  # fmt: skip
