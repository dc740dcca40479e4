"""What an app accumulates: configuration, conversations and messages, workflow runs, end users.

Dify's tables and columns (those its 1.7.0 code uses). Deleting an app walks them all
(``remove_app_and_related_data_task``), so the foreign-key policy is the deletion's:

- small per-app configuration tables (model configs, sites, MCP servers, API tokens,
  installations, recommendations, workflow tools) cascade from ``apps``: they go with the row,
  in the app's transaction;
- the large ones (workflows and their runs, node executions and logs, conversations, messages,
  end users, conversation variables) have **no** foreign key to ``apps`` (a cascade would delete
  millions of rows in the API request): the deletion job removes them in batches, by an index
  on ``(tenant_id, app_id, id)`` or ``(app_id, id)`` that its keyset scans walk. Nor do node
  executions and logs reference their run, or messages their conversation: children that can
  outnumber their parent a hundred to one are deleted in batches first, never by a cascade;
- a message's own children (feedbacks, chains, agent thoughts, files, saved messages) cascade
  from it as a safety net; the job deletes them first, at most 1,000 rows a statement.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from worker.domain.models.base import Base, created_at, tenant_fk, updated_at, uuid_pk


def _app_fk() -> Mapped[uuid.UUID]:
    """``app_id`` of a small configuration table: deleting the app deletes the row."""
    return mapped_column(sa.ForeignKey("apps.id", ondelete="CASCADE"), index=True)


def name_column() -> Mapped[str]:
    """A ``varchar(255) NOT NULL`` (Dify's ``String(255)`` columns)."""
    return mapped_column(sa.String(255))


def text_column() -> Mapped[str | None]:
    """A nullable ``text``."""
    return mapped_column(sa.Text)


class AppModelConfig(Base):
    """A version of a (non-workflow) app's model configuration."""

    __tablename__ = "app_model_configs"

    id: Mapped[uuid.UUID] = uuid_pk()
    app_id: Mapped[uuid.UUID] = _app_fk()
    provider: Mapped[str | None] = mapped_column(sa.String(255))
    model_id: Mapped[str | None] = mapped_column(sa.String(255))
    configs: Mapped[dict[str, Any] | None] = mapped_column()
    created_by: Mapped[uuid.UUID | None] = mapped_column()
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()


class Site(Base):
    """The public web app of an app."""

    __tablename__ = "sites"

    id: Mapped[uuid.UUID] = uuid_pk()
    app_id: Mapped[uuid.UUID] = _app_fk()
    title: Mapped[str] = name_column()
    code: Mapped[str | None] = mapped_column(sa.String(255), index=True)
    status: Mapped[str] = mapped_column(sa.String(255), server_default=sa.text("'normal'"))
    created_at: Mapped[datetime] = created_at()


class AppMCPServer(Base):
    """An app served as an MCP server."""

    __tablename__ = "app_mcp_servers"

    id: Mapped[uuid.UUID] = uuid_pk()
    tenant_id: Mapped[uuid.UUID] = tenant_fk()
    app_id: Mapped[uuid.UUID] = _app_fk()
    name: Mapped[str] = name_column()
    server_code: Mapped[str] = name_column()
    status: Mapped[str] = mapped_column(sa.String(255), server_default=sa.text("'normal'"))
    parameters: Mapped[str | None] = text_column()
    created_at: Mapped[datetime] = created_at()


class ApiToken(Base):
    """An API key of an app (``type`` ``app``) or of a dataset."""

    __tablename__ = "api_tokens"

    id: Mapped[uuid.UUID] = uuid_pk()
    app_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("apps.id", ondelete="CASCADE"), index=True
    )
    tenant_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("tenants.id", ondelete="CASCADE"), index=True
    )
    type: Mapped[str] = mapped_column(sa.String(16))
    token: Mapped[str] = mapped_column(sa.String(255), index=True)
    last_used_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = created_at()


class InstalledApp(Base):
    """An app installed in a workspace's explore list (maybe another workspace's app)."""

    __tablename__ = "installed_apps"
    __table_args__ = (sa.UniqueConstraint("tenant_id", "app_id"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    tenant_id: Mapped[uuid.UUID] = tenant_fk(index=False)
    app_id: Mapped[uuid.UUID] = _app_fk()
    #: The workspace that owns the app.
    app_owner_tenant_id: Mapped[uuid.UUID] = mapped_column()
    position: Mapped[int] = mapped_column(server_default=sa.text("0"))
    is_pinned: Mapped[bool] = mapped_column(server_default=sa.false())
    last_used_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = created_at()


class RecommendedApp(Base):
    """An app listed in the explore page's recommendations."""

    __tablename__ = "recommended_apps"

    id: Mapped[uuid.UUID] = uuid_pk()
    app_id: Mapped[uuid.UUID] = _app_fk()
    category: Mapped[str] = name_column()
    position: Mapped[int] = mapped_column(server_default=sa.text("0"))
    is_listed: Mapped[bool] = mapped_column(server_default=sa.true())
    install_count: Mapped[int] = mapped_column(server_default=sa.text("0"))
    language: Mapped[str] = mapped_column(sa.String(255), server_default=sa.text("'en-US'"))
    created_at: Mapped[datetime] = created_at()


class ToolWorkflowProvider(Base):
    """A workflow app published as a tool."""

    __tablename__ = "tool_workflow_providers"

    id: Mapped[uuid.UUID] = uuid_pk()
    tenant_id: Mapped[uuid.UUID] = tenant_fk()
    app_id: Mapped[uuid.UUID] = _app_fk()
    name: Mapped[str] = name_column()
    label: Mapped[str] = mapped_column(sa.String(255), server_default=sa.text("''"))
    icon: Mapped[str] = mapped_column(sa.String(255), server_default=sa.text("''"))
    version: Mapped[str] = mapped_column(sa.String(255), server_default=sa.text("''"))
    user_id: Mapped[uuid.UUID | None] = mapped_column()
    description: Mapped[str] = mapped_column(sa.Text, server_default=sa.text("''"))
    parameter_configuration: Mapped[str] = mapped_column(sa.Text, server_default=sa.text("'[]'"))
    created_at: Mapped[datetime] = created_at()


class Tag(Base):
    """A tag of a workspace, for apps (``type`` ``app``) or datasets (``knowledge``)."""

    __tablename__ = "tags"

    id: Mapped[uuid.UUID] = uuid_pk()
    tenant_id: Mapped[uuid.UUID] = tenant_fk()
    type: Mapped[str] = mapped_column(sa.String(16))
    name: Mapped[str] = name_column()
    created_by: Mapped[uuid.UUID | None] = mapped_column()
    created_at: Mapped[datetime] = created_at()


class TagBinding(Base):
    """A tag put on an app or a dataset (``target_id``: no foreign key, it names either)."""

    __tablename__ = "tag_bindings"
    __table_args__ = (sa.Index(None, "tenant_id", "target_id", "id"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    tenant_id: Mapped[uuid.UUID] = tenant_fk(index=False)
    tag_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("tags.id", ondelete="CASCADE"), index=True
    )
    target_id: Mapped[uuid.UUID] = mapped_column()
    created_by: Mapped[uuid.UUID | None] = mapped_column()
    created_at: Mapped[datetime] = created_at()


class Workflow(Base):
    """A version of a workflow app's graph (``draft`` or a published version)."""

    __tablename__ = "workflows"
    __table_args__ = (sa.Index(None, "tenant_id", "app_id", "id"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    tenant_id: Mapped[uuid.UUID] = tenant_fk(index=False)
    app_id: Mapped[uuid.UUID] = mapped_column()
    type: Mapped[str] = name_column()
    version: Mapped[str] = name_column()
    graph: Mapped[str | None] = text_column()
    created_by: Mapped[uuid.UUID | None] = mapped_column()
    created_at: Mapped[datetime] = created_at()


class WorkflowRun(Base):
    """One run of a workflow."""

    __tablename__ = "workflow_runs"
    __table_args__ = (sa.Index(None, "tenant_id", "app_id", "id"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    tenant_id: Mapped[uuid.UUID] = tenant_fk(index=False)
    app_id: Mapped[uuid.UUID] = mapped_column()
    workflow_id: Mapped[uuid.UUID | None] = mapped_column()
    type: Mapped[str] = name_column()
    triggered_from: Mapped[str] = name_column()
    version: Mapped[str] = name_column()
    status: Mapped[str] = name_column()
    inputs: Mapped[str | None] = text_column()
    outputs: Mapped[str | None] = text_column()
    error: Mapped[str | None] = text_column()
    elapsed_time: Mapped[float] = mapped_column(sa.Float, server_default=sa.text("0"))
    total_tokens: Mapped[int] = mapped_column(sa.BigInteger, server_default=sa.text("0"))
    total_steps: Mapped[int] = mapped_column(server_default=sa.text("0"))
    created_by_role: Mapped[str] = name_column()
    created_by: Mapped[uuid.UUID | None] = mapped_column()
    created_at: Mapped[datetime] = created_at()
    finished_at: Mapped[datetime | None] = mapped_column()


class WorkflowNodeExecution(Base):
    """One node's execution within a workflow run (or a single-step debug run)."""

    __tablename__ = "workflow_node_executions"
    __table_args__ = (sa.Index(None, "tenant_id", "app_id", "id"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    tenant_id: Mapped[uuid.UUID] = tenant_fk(index=False)
    app_id: Mapped[uuid.UUID] = mapped_column()
    workflow_id: Mapped[uuid.UUID | None] = mapped_column()
    workflow_run_id: Mapped[uuid.UUID | None] = mapped_column()
    triggered_from: Mapped[str] = name_column()
    index: Mapped[int] = mapped_column(server_default=sa.text("0"))
    node_id: Mapped[str] = name_column()
    node_type: Mapped[str] = name_column()
    title: Mapped[str] = name_column()
    inputs: Mapped[str | None] = text_column()
    outputs: Mapped[str | None] = text_column()
    status: Mapped[str] = name_column()
    error: Mapped[str | None] = text_column()
    elapsed_time: Mapped[float] = mapped_column(sa.Float, server_default=sa.text("0"))
    created_at: Mapped[datetime] = created_at()


class WorkflowAppLog(Base):
    """The log line of a workflow run started from an app."""

    __tablename__ = "workflow_app_logs"
    __table_args__ = (sa.Index(None, "tenant_id", "app_id", "id"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    tenant_id: Mapped[uuid.UUID] = tenant_fk(index=False)
    app_id: Mapped[uuid.UUID] = mapped_column()
    workflow_id: Mapped[uuid.UUID | None] = mapped_column()
    workflow_run_id: Mapped[uuid.UUID | None] = mapped_column()
    created_from: Mapped[str] = name_column()
    created_by_role: Mapped[str] = name_column()
    created_by: Mapped[uuid.UUID | None] = mapped_column()
    created_at: Mapped[datetime] = created_at()


class EndUser(Base):
    """A user of an app's web app or API (not a console account)."""

    __tablename__ = "end_users"
    __table_args__ = (sa.Index(None, "tenant_id", "app_id", "id"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    tenant_id: Mapped[uuid.UUID] = tenant_fk(index=False)
    app_id: Mapped[uuid.UUID | None] = mapped_column()
    type: Mapped[str] = name_column()
    external_user_id: Mapped[str | None] = mapped_column(sa.String(255))
    name: Mapped[str | None] = mapped_column(sa.String(255))
    is_anonymous: Mapped[bool] = mapped_column(server_default=sa.true())
    session_id: Mapped[str] = name_column()
    created_at: Mapped[datetime] = created_at()
