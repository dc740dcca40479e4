"""Plugin auto-upgrade tasks (queue ``plugin``), with Dify's names and arguments.

``check_upgradable_plugin_task`` runs every quarter hour (UTC) from the in-worker scheduler and
defers one ``process_tenant_plugin_autoupgrade_check_task`` per workspace due; that one talks to
the plugin daemon and the marketplace (``PLUGIN_DAEMON_URL``, ``MARKETPLACE_API_URL``).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import orm

from worker import queues, runtime
from worker.domain import plugins
from worker.domain.plugins import autoupgrade
from worker.jobs import AlreadyEnqueued, Retry, task
from worker.jobs.uow import UnitOfWork

logger = logging.getLogger(__name__)

#: One upgrade check per workspace at a time, and at most one waiting.
TENANT_LOCK = "tenant:{tenant_id}:plugin_upgrade"
#: Workspaces checked per tick at most; the others wait for the next tick (they stay due).
CHECK_BATCH = 500
#: The scan reads and defers only: database errors retry it twice, 30 then 60 s later; the
#: next tick does the same work anyway.
CHECK_RETRY = Retry(max_retries=2, default_retry_delay=30, backoff=2)
#: An unreachable daemon or marketplace: 5 retries from 1 minute, doubling (about 30 minutes in
#: all); upgrades already accepted are found done by the retry.
UPGRADE_RETRY = Retry(max_retries=5, default_retry_delay=60, backoff=2, max_delay=900)


@task(
    name="plugins.check_upgradable_plugin",
    queue=queues.PLUGIN,
    retry=CHECK_RETRY,
    queueing_lock="plugins:check_upgradable_plugin",
)
def check_upgradable_plugin_task(*, uow: UnitOfWork) -> list[str]:
    """Defer the check of every workspace whose upgrade time passed since its last check; no
    lock (due rows are taken SKIP LOCKED); a re-run finds them checked."""
    return autoupgrade.check_due(
        uow, now=datetime.now(UTC), limit=CHECK_BATCH, defer=_defer_tenant_check
    )


@task(
    name="plugins.process_tenant_plugin_autoupgrade_check",
    queue=queues.PLUGIN,
    retry=UPGRADE_RETRY,
    lock=TENANT_LOCK,
    queueing_lock=TENANT_LOCK,
)
def process_tenant_plugin_autoupgrade_check_task(
    tenant_id: str,
    strategy_setting: str,
    upgrade_time_of_day: int,
    upgrade_mode: str,
    exclude_plugins: list[str],
    include_plugins: list[str],
    *,
    uow: UnitOfWork,
) -> list[dict[str, Any]]:
    """Upgrade one workspace's marketplace plugins; lock per workspace; a re-run lists the
    daemon's plugins again and finds the upgrades done."""
    strategy = autoupgrade.Strategy.of_arguments(
        tenant_id=tenant_id,
        strategy_setting=strategy_setting,
        upgrade_mode=upgrade_mode,
        exclude_plugins=exclude_plugins,
        include_plugins=include_plugins,
    )
    with plugins.connect(runtime.current().settings) as (daemon, marketplace):
        return autoupgrade.check_tenant(uow, daemon, marketplace, strategy)


def _defer_tenant_check(session: orm.Session, arguments: dict[str, Any]) -> None:
    try:
        process_tenant_plugin_autoupgrade_check_task.apply_async(kwargs=arguments, session=session)
    except AlreadyEnqueued:
        logger.info(
            "workspace %s: its plugin check already waits",
            arguments["tenant_id"],
            extra={"action": "plugin_check_pending", "tenant_id": arguments["tenant_id"]},
        )
