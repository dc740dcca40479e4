"""Administrative commands: ``migrate``, ``check`` and ``db``."""

from __future__ import annotations

import argparse
from typing import Any

import sqlalchemy as sa

from worker import db, runtime, schema
from worker.cli.errors import CommandError, reaching
from worker.config import Settings
from worker.embedded import EmbeddedPostgres


def add_commands(commands: Any) -> None:
    migrate = commands.add_parser("migrate", help="apply pending schema migrations")
    migrate.set_defaults(handler=cmd_migrate)

    check = commands.add_parser(
        "check", help="check configuration, database reachability and schema (exit 1 if not ok)"
    )
    check.set_defaults(handler=cmd_check)

    db_parser = commands.add_parser("db", help="the database in use and the embedded server")
    actions = db_parser.add_subparsers(dest="db_action", metavar="ACTION")
    actions.required = True
    url = actions.add_parser("url", help="print the connection URL in use")
    url.set_defaults(handler=cmd_db_url)
    actions.add_parser("status", help="show whether the embedded server runs").set_defaults(
        handler=cmd_db_status
    )
    start = actions.add_parser(
        "start", help="start the embedded server and keep it running until `db stop`"
    )
    start.set_defaults(handler=cmd_db_start)
    stop = actions.add_parser("stop", help="stop the embedded server")
    stop.add_argument(
        "--force", action="store_true", help="stop it even while other processes use it"
    )
    stop.set_defaults(handler=cmd_db_stop)
    for action in (url, start):
        action.add_argument(
            "--show-password", action="store_true", help="print the password in the URL"
        )


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    with runtime.database_url(settings) as url, reaching(url):
        engine = schema.engine_for(url, connect_timeout=settings.db_connect_timeout)
        try:
            before = schema.state(engine)
            after = schema.upgrade(engine)
        finally:
            engine.dispose()
    if before.at_head:
        print(f"schema already at head {after.head}: nothing to do")
    else:
        print(f"schema migrated from {','.join(before.current) or 'empty'} to {after.head}")
    return 0


def cmd_check(args: argparse.Namespace, settings: Settings) -> int:
    with runtime.database_url(settings) as url, reaching(url):
        engine = schema.engine_for(url, connect_timeout=settings.db_connect_timeout)
        try:
            with engine.connect() as connection:
                version = connection.execute(sa.text("SHOW server_version")).scalar_one()
                pgvector = connection.execute(
                    sa.text("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
                ).scalar_one_or_none()
            state = schema.state(engine)
        finally:
            engine.dispose()
    print(f"database  ok    PostgreSQL {version} at {db.redacted(url)}")
    print(f"pgvector  {'ok' if pgvector else 'MISSING':<5} {pgvector or 'run: manage.py migrate'}")
    mail = f"MAIL_TYPE={settings.mail_type}" if settings.mail_enabled else "off (MAIL_TYPE unset)"
    print(f"mail      {'on' if settings.mail_enabled else 'off':<5} {mail}")
    if not state.at_head:
        current = ",".join(state.current) or "empty"
        raise CommandError(f"schema at {current}, head is {state.head}: run `manage.py migrate`")
    print(f"schema    ok    at head {state.head}")
    return 0


def cmd_db_url(args: argparse.Namespace, settings: Settings) -> int:
    if settings.database_url is not None:
        print(_shown(db.libpq_url(settings.database_url), args.show_password))
        return 0
    status = _embedded(settings).status()
    if not status.running or status.url is None:
        raise CommandError(
            f"the embedded server ({status.pgdata}) is not running; "
            "start it with `manage.py db start`"
        )
    print(_shown(status.url, args.show_password))
    return 0


def cmd_db_status(args: argparse.Namespace, settings: Settings) -> int:
    if settings.database_url is not None:
        print(f"external  {db.redacted(settings.database_url)} (DATABASE_URL; nothing embedded)")
        return 0
    status = _embedded(settings).status()
    state = "running" if status.running else "stopped"
    print(f"embedded  {state}  data={status.pgdata}")
    if status.running:
        print(f"pid       {status.pid}")
        print(f"url       {status.url}")
    print(f"pinned    {'yes' if status.pinned else 'no'}")
    print(f"users     {', '.join(map(str, status.attached_pids)) or 'none'}")
    return 0


def cmd_db_start(args: argparse.Namespace, settings: Settings) -> int:
    url = _embedded(settings).start_pinned()
    print(_shown(url, args.show_password))
    return 0


def cmd_db_stop(args: argparse.Namespace, settings: Settings) -> int:
    stopped = _embedded(settings).stop(force=args.force)
    print("embedded server stopped" if stopped else "embedded server was not running")
    return 0


def _embedded(settings: Settings) -> EmbeddedPostgres:
    if settings.database_url is not None:
        raise CommandError(
            "DATABASE_URL is set, so the embedded server is not used; unset it to manage it",
            exit_code=2,
        )
    return EmbeddedPostgres(settings.data_dir)


def _shown(url: str, show_password: bool) -> str:
    return db.libpq_url(url) if show_password else db.redacted(url)
