"""Alembic environment: runs the ordered migrations in ``migrations/versions``.

``worker.schema`` drives it programmatically and hands over an open connection in
``config.attributes["connection"]``; the ``alembic`` command line works too with
``-x url=postgresql://...``. Migrations run in one transaction under an advisory lock, so two
concurrent ``manage.py migrate`` runs apply each step once.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import context

from worker import db
from worker.domain.models import Base

#: Key of the transaction-scoped advisory lock that serialises concurrent migrations.
MIGRATION_LOCK_KEY = 0x6D696772  # "migr"


def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
    """Leave procrastinate's objects (their own versioned schema) out of model comparison."""
    return not (type_ == "table" and name is not None and name.startswith("procrastinate_"))


def run_migrations(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        include_name=include_name,
        compare_type=True,
        compare_server_default=True,
    )
    with context.begin_transaction():
        connection.execute(sa.select(sa.func.pg_advisory_xact_lock(MIGRATION_LOCK_KEY)))
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    run_migrations(connection)
else:
    url = context.get_x_argument(as_dictionary=True).get("url")
    if not url:
        raise SystemExit("pass the database with: alembic -x url=postgresql://... upgrade head")
    engine = db.make_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        run_migrations(conn)
    engine.dispose()
