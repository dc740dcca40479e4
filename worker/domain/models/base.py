"""Declarative base, shared column types and mixins for the domain models.

Every table keeps Dify's table and column names. Differences from Dify, on purpose:

- timestamps are ``timestamptz`` (UTC-aware) instead of naive ``timestamp``;
- JSON held as text in Dify (``data_source_info``, ``rules``, ``index_struct``, ...) is ``jsonb``;
- status columns carry CHECK constraints listing their allowed values;
- ownership relations have foreign keys with ``ON DELETE CASCADE`` so that deleting a parent
  can never leave orphans. Audit columns (``created_by``, ``updated_by``, ``disabled_by``, ...)
  deliberately have no foreign key: Dify deletes accounts and keeps what they created.
"""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

#: Deterministic constraint names, so that migrations and models agree on them.
NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


#: Minimum width of the ``varchar`` behind an enum column.
ENUM_COLUMN_LENGTH = 32


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Base class of every domain model."""

    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, sa.types.TypeEngine[Any]]] = {
        uuid.UUID: sa.Uuid(),
        datetime: sa.DateTime(timezone=True),
        dict[str, Any]: JSONB(),
        list[Any]: JSONB(),
        list[str]: JSONB(),
    }


def str_enum(enum_cls: type[enum.StrEnum], *, name: str) -> sa.Enum:
    """A ``varchar`` column type restricted by a CHECK constraint to the enum's values.

    Parameters
    ----------
    enum_cls:
        The ``StrEnum`` whose *values* (not member names) are stored.
    name:
        Name of the CHECK constraint (prefixed with the table name by the naming convention).
    """
    return sa.Enum(
        enum_cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        # room for longer values later without widening the column
        length=max(ENUM_COLUMN_LENGTH, *(len(member.value) for member in enum_cls)),
        values_callable=lambda members: [member.value for member in members],
        validate_strings=True,
    )


def uuid_pk() -> Mapped[uuid.UUID]:
    """Primary key column ``id``: generated in Python for the ORM, ``uuidv7()`` for raw SQL."""
    return mapped_column(
        sa.Uuid(), primary_key=True, default=uuid.uuid4, server_default=sa.text("uuidv7()")
    )


def created_at() -> Mapped[datetime]:
    """``created_at timestamptz NOT NULL DEFAULT now()``."""
    return mapped_column(sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now())


def updated_at() -> Mapped[datetime]:
    """``updated_at timestamptz NOT NULL DEFAULT now()``, set by the ORM on every update.

    The update value is computed in Python, so the ORM never has to fetch it back (which an
    ``AsyncSession`` cannot do lazily).
    """
    return mapped_column(
        sa.DateTime(timezone=True),
        nullable=False,
        server_default=sa.func.now(),
        onupdate=_utcnow,
    )


def tenant_fk(*, index: bool = True) -> Mapped[uuid.UUID]:
    """``tenant_id`` referencing ``tenants.id``; a deleted tenant takes its rows with it.

    Parameters
    ----------
    index:
        Pass ``False`` when ``tenant_id`` already leads another index or unique constraint of the
        table, which serves the foreign key as well.
    """
    return mapped_column(
        sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False, index=index
    )
