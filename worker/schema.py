"""Schema migrations: apply them (``manage.py migrate``) and tell whether a database is at head.

The migrations are Alembic revisions in ``migrations/versions`` at the repository root: first
procrastinate's schema at the pinned version plus pgvector, then the domain tables. They are
forward-only and never edited once committed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from worker import db

logger = logging.getLogger(__name__)

#: The ``migrations`` folder, next to the ``worker`` package in the checkout.
MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


@dataclass(frozen=True, kw_only=True)
class SchemaState:
    """Where a database stands against the migrations."""

    current: tuple[str, ...]
    head: str

    @property
    def at_head(self) -> bool:
        """Whether every migration has been applied."""
        return self.current == (self.head,)


def alembic_config() -> Config:
    """Alembic configuration pointing at ``migrations/`` (no ``alembic.ini`` needed)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str:
    """The last migration's revision id."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError(f"no migrations found in {MIGRATIONS_DIR}")
    return head


def upgrade(engine: sa.Engine) -> SchemaState:
    """Apply every pending migration in one transaction; a database at head is left unchanged."""
    before = state(engine)
    if before.at_head:
        logger.info("schema already at head %s", before.head, extra={"action": "migrate_noop"})
        return before
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    after = state(engine)
    logger.info(
        "schema migrated from %s to %s",
        ",".join(before.current) or "empty",
        after.head,
        extra={"action": "migrate_done"},
    )
    return after


def state(engine: sa.Engine) -> SchemaState:
    """Read the applied revision(s) from ``alembic_version``."""
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_heads()
    return SchemaState(current=tuple(current), head=head_revision())


def engine_for(database_url: str, *, connect_timeout: int = 10) -> sa.Engine:
    """A single-connection engine for administrative commands."""
    return db.make_engine(database_url, connect_timeout=connect_timeout, poolclass=sa.pool.NullPool)
