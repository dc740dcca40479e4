"""``manage.py``: argparse front end. Every failure is one line on stderr and a non-zero exit."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

import psycopg
import sqlalchemy as sa

from worker.cli import admin, dashboard, documents, errors, jobs, logs, run, schedule, tasks
from worker.config import ConfigError, Settings
from worker.embedded import EmbeddedPostgresError

logger = logging.getLogger(__name__)

PROG = "manage.py"

Handler = Callable[[argparse.Namespace, Settings], int]


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are a single line."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {PROG} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Dify's background task layer on procrastinate and PostgreSQL.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True
    admin.add_commands(commands)
    run.add_commands(commands)
    jobs.add_commands(commands)
    documents.add_commands(commands)
    schedule.add_commands(commands)
    tasks.add_commands(commands)
    dashboard.add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv``, read the settings once, run the command and return its exit code."""
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    try:
        settings = Settings.from_process_env()
        logs.configure_logging(settings.log_level)
        return handler(args, settings)
    except ConfigError as exc:
        return _fail(str(exc), 2)
    except errors.CommandError as exc:
        return _fail(str(exc), exc.exit_code)
    except EmbeddedPostgresError as exc:
        return _fail(str(exc), 1)
    except (sa.exc.OperationalError, sa.exc.InterfaceError, psycopg.OperationalError) as exc:
        return _fail(errors.describe_connection_error(exc), 1)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except BrokenPipeError:
        return _reader_gone()
    except Exception as exc:
        logger.debug("unexpected error", exc_info=True)
        return _fail(
            f"unexpected {type(exc).__name__}: {errors.describe_connection_error(exc)} "
            "(LOG_LEVEL=DEBUG shows the traceback)",
            1,
        )


def _reader_gone() -> int:
    """The output's reader went away (``| head``): stop quietly, as Unix tools do on SIGPIPE."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())  # nothing left to flush into the closed pipe at exit
    return 128 + signal.SIGPIPE


def _fail(message: str, code: int) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return code
