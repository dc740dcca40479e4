"""Workspaces (tenants), accounts, memberships and the per-workspace plugin upgrade strategy."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from worker.domain.models.base import Base, created_at, str_enum, tenant_fk, updated_at, uuid_pk
from worker.domain.models.enums import (
    AccountStatus,
    AutoUpgradeMode,
    AutoUpgradeStrategySetting,
    TenantAccountRole,
    TenantStatus,
)

#: Seconds in a day: ``upgrade_time_of_day`` is a second of the UTC day.
_SECONDS_PER_DAY = 86_400


class Tenant(Base):
    """A workspace: owner of every dataset, app and file."""

    __tablename__ = "tenants"

    id: Mapped[uuid.UUID] = uuid_pk()
    name: Mapped[str] = mapped_column(sa.String(255))
    encrypt_public_key: Mapped[str | None] = mapped_column(sa.Text)
    plan: Mapped[str] = mapped_column(sa.String(255), server_default=sa.text("'basic'"))
    status: Mapped[TenantStatus] = mapped_column(
        str_enum(TenantStatus, name="status"), server_default=sa.text("'normal'")
    )
    custom_config: Mapped[dict[str, Any] | None] = mapped_column()
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()


class Account(Base):
    """A console user; may be a member of several workspaces."""

    __tablename__ = "accounts"
    __table_args__ = (sa.UniqueConstraint("email"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    name: Mapped[str] = mapped_column(sa.String(255))
    email: Mapped[str] = mapped_column(sa.String(255))
    avatar: Mapped[str | None] = mapped_column(sa.String(255))
    interface_language: Mapped[str | None] = mapped_column(sa.String(255))
    interface_theme: Mapped[str | None] = mapped_column(sa.String(255))
    timezone: Mapped[str | None] = mapped_column(sa.String(255))
    last_login_at: Mapped[datetime | None] = mapped_column()
    last_login_ip: Mapped[str | None] = mapped_column(sa.String(255))
    last_active_at: Mapped[datetime] = mapped_column(server_default=sa.func.now())
    status: Mapped[AccountStatus] = mapped_column(
        str_enum(AccountStatus, name="status"), server_default=sa.text("'active'")
    )
    initialized_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()


class TenantAccountJoin(Base):
    """Membership of an account in a workspace, with its role."""

    __tablename__ = "tenant_account_joins"
    __table_args__ = (sa.UniqueConstraint("tenant_id", "account_id"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    tenant_id: Mapped[uuid.UUID] = tenant_fk(index=False)
    account_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    #: The workspace the account opens by default.
    current: Mapped[bool] = mapped_column(server_default=sa.false())
    role: Mapped[TenantAccountRole] = mapped_column(
        str_enum(TenantAccountRole, name="role"), server_default=sa.text("'normal'")
    )
    invited_by: Mapped[uuid.UUID | None] = mapped_column()
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()


class TenantPluginAutoUpgradeStrategy(Base):
    """How and when a workspace's marketplace plugins are upgraded; one row per workspace."""

    __tablename__ = "tenant_plugin_auto_upgrade_strategies"
    __table_args__ = (
        sa.UniqueConstraint("tenant_id"),
        sa.CheckConstraint(
            f"upgrade_time_of_day >= 0 AND upgrade_time_of_day < {_SECONDS_PER_DAY}",
            name="time_of_day_range",
        ),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    tenant_id: Mapped[uuid.UUID] = tenant_fk(index=False)
    strategy_setting: Mapped[AutoUpgradeStrategySetting] = mapped_column(
        str_enum(AutoUpgradeStrategySetting, name="strategy_setting"),
        server_default=sa.text("'fix_only'"),
    )
    upgrade_mode: Mapped[AutoUpgradeMode] = mapped_column(
        str_enum(AutoUpgradeMode, name="upgrade_mode"), server_default=sa.text("'exclude'")
    )
    #: Plugin ids (``org/name``) skipped in ``exclude`` mode.
    exclude_plugins: Mapped[list[str]] = mapped_column(server_default=sa.text("'[]'::jsonb"))
    #: Plugin ids (``org/name``) upgraded in ``partial`` mode.
    include_plugins: Mapped[list[str]] = mapped_column(server_default=sa.text("'[]'::jsonb"))
    #: Second of the UTC day at which the workspace is due for its daily check.
    upgrade_time_of_day: Mapped[int] = mapped_column(index=True, server_default=sa.text("0"))
    #: When ``check_upgradable_plugin_task`` last deferred the workspace's check (ours, not
    #: Dify's): the workspace is due again once its time of day has passed since then.
    last_checked_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()
