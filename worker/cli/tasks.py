"""``manage.py tasks``: every task with its names, queue, arguments and retry policy."""

from __future__ import annotations

import argparse
from typing import Any

from worker.app import app
from worker.config import Settings
from worker.jobs import catalog


def add_commands(commands: Any) -> None:
    listing = commands.add_parser(
        "tasks", help="list every task: its names, queue, arguments and retry policy"
    )
    listing.set_defaults(handler=cmd_tasks)


def cmd_tasks(args: argparse.Namespace, settings: Settings) -> int:
    app.import_paths = [*app.import_paths, *settings.import_paths]
    infos = catalog.describe_all()
    for info in infos:
        print(info.name)
        if info.other_names:
            print(f"    also       {', '.join(info.other_names)}")
        print(f"    queue      {info.queue}")
        print(f"    arguments  {', '.join(info.arguments) or '-'}")
        print(f"    retry      {info.retry}")
        if info.lock or info.queueing_lock:
            print(
                f"    locks      lock={info.lock or '-'} queueing_lock={info.queueing_lock or '-'}"
            )
        if info.secret_args:
            print(f"    secret     {', '.join(info.secret_args)} (masked in logs and once ended)")
    print(f"{len(infos)} tasks")
    return 0
