"""``manage.py documents recover``: re-defer documents stuck in progress with no job."""

from __future__ import annotations

import argparse
from typing import Any

from worker import runtime
from worker.cli.errors import reaching
from worker.config import STUCK_DOCUMENT_AFTER, Settings


def add_commands(commands: Any) -> None:
    documents = commands.add_parser("documents", help="document maintenance")
    actions = documents.add_subparsers(dest="documents_action", metavar="ACTION")
    actions.required = True
    recover = actions.add_parser(
        "recover",
        help="re-defer indexing of documents left in progress with no waiting or running job",
    )
    recover.add_argument(
        "--older-than",
        type=float,
        default=STUCK_DOCUMENT_AFTER,
        metavar="SECONDS",
        help=f"only documents unchanged for this long (default {STUCK_DOCUMENT_AFTER:.0f})",
    )
    recover.set_defaults(handler=cmd_recover)


def cmd_recover(args: argparse.Namespace, settings: Settings) -> int:
    from worker.jobs.uow import UnitOfWork
    from worker.tasks import maintenance  # the task modules are heavy: import them when used

    with runtime.database_url(settings) as url, reaching(url):
        runtime.setup(url, pool_size=1, settings=settings, open_sync_pool=False)
        try:
            with UnitOfWork() as uow:
                deferred = maintenance.recover_stuck_documents(uow, older_than=args.older_than)
                uow.checkpoint()  # the scan and its deferrals, in one transaction
        finally:
            runtime.teardown()
    for document_id in deferred:
        print(document_id)
    print(f"{len(deferred)} document(s) deferred for recovery")
    return 0
