"""domain schema

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", sa.Uuid(), server_default=sa.text("uuidv7()"), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("email", sa.String(length=255), nullable=False),
        sa.Column("avatar", sa.String(length=255), nullable=True),
        sa.Column("interface_language", sa.String(length=255), nullable=True),
        sa.Column("interface_theme", sa.String(length=255), nullable=True),
        sa.Column("timezone", sa.String(length=255), nullable=True),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_login_ip", sa.String(length=255), nullable=True),
        sa.Column(
            "last_active_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "uninitialized",
                "active",
                "banned",
                "closed",
                name="status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            server_default=sa.text("'active'"),
            nullable=False,
        ),
        sa.Column("initialized_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts")),
        sa.UniqueConstraint("email", name=op.f("uq_accounts_email")),
    )
    op.create_table(
        "dataset_collection_bindings",
        sa.Column("id", sa.Uuid(), server_default=sa.text("uuidv7()"), nullable=False),
        sa.Column("provider_name", sa.String(length=255), nullable=False),
        sa.Column("model_name", sa.String(length=255), nullable=False),
        sa.Column(
            "type",
            sa.Enum(
                "dataset",
                "annotation",
                name="type",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            server_default=sa.text("'dataset'"),
            nullable=False,
        ),
        sa.Column("collection_name", sa.String(length=64), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dataset_collection_bindings")),
        sa.UniqueConstraint(
            "provider_name",
            "model_name",
            "type",
            name=op.f("uq_dataset_collection_bindings_provider_name_model_name_type"),
        ),
    )
    op.create_table(
        "embeddings",
        sa.Column("id", sa.Uuid(), server_default=sa.text("uuidv7()"), nullable=False),
        sa.Column(
            "model_name",
            sa.String(length=255),
            server_default=sa.text("'text-embedding-ada-002'"),
            nullable=False,
        ),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("embedding", sa.LargeBinary(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "provider_name", sa.String(length=255), server_default=sa.text("''"), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_embeddings")),
        sa.UniqueConstraint(
            "model_name",
            "hash",
            "provider_name",
            name=op.f("uq_embeddings_model_name_hash_provider_name"),
        ),
    )
    op.create_index(op.f("ix_embeddings_created_at"), "embeddings", ["created_at"], unique=False)
    op.create_table(
        "tenants",
        sa.Column("id", sa.Uuid(), server_default=sa.text("uuidv7()"), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("encrypt_public_key", sa.Text(), nullable=True),
        sa.Column("plan", sa.String(length=255), server_default=sa.text("'basic'"), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "normal",
                "archive",
                name="status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            server_default=sa.text("'normal'"),
            nullable=False,
        ),
        sa.Column("custom_config", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tenants")),
    )
    op.create_table(
        "apps",
        sa.Column("id", sa.Uuid(), server_default=sa.text("uuidv7()"), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), server_default=sa.text("''"), nullable=False),
        sa.Column("mode", sa.String(length=255), nullable=False),
        sa.Column("icon_type", sa.String(length=255), nullable=True),
        sa.Column("icon", sa.String(length=255), nullable=True),
        sa.Column("icon_background", sa.String(length=255), nullable=True),
        sa.Column("app_model_config_id", sa.Uuid(), nullable=True),
        sa.Column("workflow_id", sa.Uuid(), nullable=True),
        sa.Column(
            "status",
            sa.Enum("normal", name="status", native_enum=False, create_constraint=True, length=32),
            server_default=sa.text("'normal'"),
            nullable=False,
        ),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("updated_by", sa.Uuid(), nullable=True),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_apps_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_apps")),
    )
    op.create_index(op.f("ix_apps_tenant_id"), "apps", ["tenant_id"], unique=False)
    op.create_table(
        "datasets",
        sa.Column("id", sa.Uuid(), server_default=sa.text("uuidv7()"), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column(
            "provider", sa.String(length=255), server_default=sa.text("'vendor'"), nullable=False
        ),
        sa.Column(
            "permission",
            sa.Enum(
                "only_me",
                "all_team_members",
                "partial_members",
                name="permission",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            server_default=sa.text("'only_me'"),
            nullable=False,
        ),
        sa.Column(
            "data_source_type",
            sa.Enum(
                "upload_file",
                "notion_import",
                "website_crawl",
                "local_file",
                "online_document",
                "online_drive",
                name="data_source_type",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=True,
        ),
        sa.Column(
            "indexing_technique",
            sa.Enum(
                "high_quality",
                "economy",
                name="indexing_technique",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=True,
        ),
        sa.Column("index_struct", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("created_by", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("updated_by", sa.Uuid(), nullable=True),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("embedding_model", sa.String(length=255), nullable=True),
        sa.Column("embedding_model_provider", sa.String(length=255), nullable=True),
        sa.Column("keyword_number", sa.Integer(), server_default=sa.text("10"), nullable=True),
        sa.Column("collection_binding_id", sa.Uuid(), nullable=True),
        sa.Column("retrieval_model", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("summary_index_setting", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column(
            "built_in_field_enabled", sa.Boolean(), server_default=sa.text("false"), nullable=False
        ),
        sa.Column("icon_info", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column(
            "runtime_mode",
            sa.Enum(
                "general",
                "rag_pipeline",
                name="runtime_mode",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            server_default=sa.text("'general'"),
            nullable=True,
        ),
        sa.Column("pipeline_id", sa.Uuid(), nullable=True),
        sa.Column(
            "chunk_structure",
            sa.Enum(
                "text_model",
                "qa_model",
                "hierarchical_model",
                name="chunk_structure",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=True,
        ),
        sa.Column("enable_api", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("is_multimodal", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.ForeignKeyConstraint(
            ["collection_binding_id"],
            ["dataset_collection_bindings.id"],
            name=op.f("fk_datasets_collection_binding_id_dataset_collection_bindings"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_datasets_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_datasets")),
    )
    op.create_index(
        op.f("ix_datasets_collection_binding_id"),
        "datasets",
        ["collection_binding_id"],
        unique=False,
    )
    op.create_index(op.f("ix_datasets_tenant_id"), "datasets", ["tenant_id"], unique=False)
    op.create_table(
        "tenant_account_joins",
        sa.Column("id", sa.Uuid(), server_default=sa.text("uuidv7()"), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("current", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column(
            "role",
            sa.Enum(
                "owner",
                "admin",
                "editor",
                "normal",
                "dataset_operator",
                name="role",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            server_default=sa.text("'normal'"),
            nullable=False,
        ),
        sa.Column("invited_by", sa.Uuid(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_tenant_account_joins_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_tenant_account_joins_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tenant_account_joins")),
        sa.UniqueConstraint(
            "tenant_id", "account_id", name=op.f("uq_tenant_account_joins_tenant_id_account_id")
        ),
    )
    op.create_index(
        op.f("ix_tenant_account_joins_account_id"),
        "tenant_account_joins",
        ["account_id"],
        unique=False,
    )
    op.create_table(
        "tenant_plugin_auto_upgrade_strategies",
        sa.Column("id", sa.Uuid(), server_default=sa.text("uuidv7()"), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column(
            "strategy_setting",
            sa.Enum(
                "disabled",
                "fix_only",
                "latest",
                name="strategy_setting",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            server_default=sa.text("'fix_only'"),
            nullable=False,
        ),
        sa.Column(
            "upgrade_mode",
            sa.Enum(
                "all",
                "partial",
                "exclude",
                name="upgrade_mode",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            server_default=sa.text("'exclude'"),
            nullable=False,
        ),
        sa.Column(
            "exclude_plugins",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "include_plugins",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
        sa.Column("upgrade_time_of_day", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "upgrade_time_of_day >= 0 AND upgrade_time_of_day < 86400",
            name=op.f("ck_tenant_plugin_auto_upgrade_strategies_time_of_day_range"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_tenant_plugin_auto_upgrade_strategies_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tenant_plugin_auto_upgrade_strategies")),
        sa.UniqueConstraint(
            "tenant_id", name=op.f("uq_tenant_plugin_auto_upgrade_strategies_tenant_id")
        ),
    )
    op.create_index(
        op.f("ix_tenant_plugin_auto_upgrade_strategies_upgrade_time_of_day"),
        "tenant_plugin_auto_upgrade_strategies",
        ["upgrade_time_of_day"],
        unique=False,
    )
    op.create_table(
        "upload_files",
        sa.Column("id", sa.Uuid(), server_default=sa.text("uuidv7()"), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("storage_type", sa.String(length=255), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("extension", sa.String(length=255), nullable=False),
        sa.Column("mime_type", sa.String(length=255), nullable=True),
        sa.Column(
            "created_by_role",
            sa.Enum(
                "account",
                "end_user",
                name="created_by_role",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            server_default=sa.text("'account'"),
            nullable=False,
        ),
        sa.Column("created_by", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("used", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("used_by", sa.Uuid(), nullable=True),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("hash", sa.String(length=255), nullable=True),
        sa.Column("source_url", sa.Text(), server_default=sa.text("''"), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_upload_files_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_upload_files")),
    )
    op.create_index(op.f("ix_upload_files_tenant_id"), "upload_files", ["tenant_id"], unique=False)
    op.create_table(
        "app_annotation_settings",
        sa.Column("id", sa.Uuid(), server_default=sa.text("uuidv7()"), nullable=False),
        sa.Column("app_id", sa.Uuid(), nullable=False),
        sa.Column("score_threshold", sa.Float(), server_default=sa.text("0"), nullable=False),
        sa.Column("collection_binding_id", sa.Uuid(), nullable=True),
        sa.Column("created_user_id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("updated_user_id", sa.Uuid(), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["app_id"],
            ["apps.id"],
            name=op.f("fk_app_annotation_settings_app_id_apps"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["collection_binding_id"],
            ["dataset_collection_bindings.id"],
            name=op.f("fk_app_annotation_settings_collection_binding_id"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_app_annotation_settings")),
        sa.UniqueConstraint("app_id", name=op.f("uq_app_annotation_settings_app_id")),
    )
    op.create_index(
        op.f("ix_app_annotation_settings_collection_binding_id"),
        "app_annotation_settings",
        ["collection_binding_id"],
        unique=False,
    )
    op.create_table(
        "app_dataset_joins",
        sa.Column("id", sa.Uuid(), server_default=sa.text("uuidv7()"), nullable=False),
        sa.Column("app_id", sa.Uuid(), nullable=False),
        sa.Column("dataset_id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["app_id"],
            ["apps.id"],
            name=op.f("fk_app_dataset_joins_app_id_apps"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["datasets.id"],
            name=op.f("fk_app_dataset_joins_dataset_id_datasets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_app_dataset_joins")),
        sa.UniqueConstraint(
            "app_id", "dataset_id", name=op.f("uq_app_dataset_joins_app_id_dataset_id")
        ),
    )
    op.create_index(
        op.f("ix_app_dataset_joins_dataset_id"), "app_dataset_joins", ["dataset_id"], unique=False
    )
    op.create_table(
        "dataset_metadatas",
        sa.Column("id", sa.Uuid(), server_default=sa.text("uuidv7()"), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("dataset_id", sa.Uuid(), nullable=False),
        sa.Column(
            "type",
            sa.Enum(
                "string",
                "number",
                "time",
                name="type",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("created_by", sa.Uuid(), nullable=False),
        sa.Column("updated_by", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["datasets.id"],
            name=op.f("fk_dataset_metadatas_dataset_id_datasets"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_dataset_metadatas_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dataset_metadatas")),
    )
    op.create_index(
        op.f("ix_dataset_metadatas_dataset_id"), "dataset_metadatas", ["dataset_id"], unique=False
    )
    op.create_index(
        op.f("ix_dataset_metadatas_tenant_id"), "dataset_metadatas", ["tenant_id"], unique=False
    )
    op.create_table(
        "dataset_process_rules",
        sa.Column("id", sa.Uuid(), server_default=sa.text("uuidv7()"), nullable=False),
        sa.Column("dataset_id", sa.Uuid(), nullable=False),
        sa.Column(
            "mode",
            sa.Enum(
                "automatic",
                "custom",
                "hierarchical",
                name="mode",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            server_default=sa.text("'automatic'"),
            nullable=False,
        ),
        sa.Column("rules", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("created_by", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["datasets.id"],
            name=op.f("fk_dataset_process_rules_dataset_id_datasets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dataset_process_rules")),
    )
    op.create_index(
        op.f("ix_dataset_process_rules_dataset_id"),
        "dataset_process_rules",
        ["dataset_id"],
        unique=False,
    )
    op.create_table(
        "dataset_queries",
        sa.Column("id", sa.Uuid(), server_default=sa.text("uuidv7()"), nullable=False),
        sa.Column("dataset_id", sa.Uuid(), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column(
            "source",
            sa.Enum(
                "hit_testing",
                "app",
                name="source",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("source_app_id", sa.Uuid(), nullable=True),
        sa.Column(
            "created_by_role",
            sa.Enum(
                "account",
                "end_user",
                name="created_by_role",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("created_by", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["datasets.id"],
            name=op.f("fk_dataset_queries_dataset_id_datasets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dataset_queries")),
    )
    op.create_index(
        op.f("ix_dataset_queries_dataset_id_created_at"),
        "dataset_queries",
        ["dataset_id", "created_at"],
        unique=False,
    )
    op.create_table(
        "message_annotations",
        sa.Column("id", sa.Uuid(), server_default=sa.text("uuidv7()"), nullable=False),
        sa.Column("app_id", sa.Uuid(), nullable=False),
        sa.Column("conversation_id", sa.Uuid(), nullable=True),
        sa.Column("message_id", sa.Uuid(), nullable=True),
        sa.Column("question", sa.Text(), nullable=True),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("hit_count", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["app_id"],
            ["apps.id"],
            name=op.f("fk_message_annotations_app_id_apps"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message_annotations")),
    )
    op.create_index(
        op.f("ix_message_annotations_app_id"), "message_annotations", ["app_id"], unique=False
    )
    op.create_table(
        "app_annotation_hit_histories",
        sa.Column("id", sa.Uuid(), server_default=sa.text("uuidv7()"), nullable=False),
        sa.Column("app_id", sa.Uuid(), nullable=False),
        sa.Column("annotation_id", sa.Uuid(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("score", sa.Float(), server_default=sa.text("0"), nullable=False),
        sa.Column("message_id", sa.Uuid(), nullable=False),
        sa.Column("annotation_question", sa.Text(), nullable=False),
        sa.Column("annotation_content", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["annotation_id"],
            ["message_annotations.id"],
            name=op.f("fk_app_annotation_hit_histories_annotation_id"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["app_id"],
            ["apps.id"],
            name=op.f("fk_app_annotation_hit_histories_app_id_apps"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_app_annotation_hit_histories")),
    )
    op.create_index(
        op.f("ix_app_annotation_hit_histories_annotation_id"),
        "app_annotation_hit_histories",
        ["annotation_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_app_annotation_hit_histories_app_id"),
        "app_annotation_hit_histories",
        ["app_id"],
        unique=False,
    )
    op.create_table(
        "documents",
        sa.Column("id", sa.Uuid(), server_default=sa.text("uuidv7()"), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("dataset_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column(
            "data_source_type",
            sa.Enum(
                "upload_file",
                "notion_import",
                "website_crawl",
                "local_file",
                "online_document",
                "online_drive",
                name="data_source_type",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("data_source_info", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("dataset_process_rule_id", sa.Uuid(), nullable=True),
        sa.Column("batch", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column(
            "created_from",
            sa.Enum(
                "web",
                "api",
                "rag-pipeline",
                name="created_from",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("created_by", sa.Uuid(), nullable=False),
        sa.Column("created_api_request_id", sa.Uuid(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("processing_started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("file_id", sa.Text(), nullable=True),
        sa.Column("word_count", sa.Integer(), nullable=True),
        sa.Column("parsing_completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cleaning_completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("splitting_completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("tokens", sa.Integer(), nullable=True),
        sa.Column("indexing_latency", sa.Float(), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("is_paused", sa.Boolean(), server_default=sa.text("false"), nullable=True),
        sa.Column("paused_by", sa.Uuid(), nullable=True),
        sa.Column("paused_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("stopped_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "indexing_status",
            sa.Enum(
                "waiting",
                "parsing",
                "cleaning",
                "splitting",
                "indexing",
                "paused",
                "completed",
                "error",
                name="indexing_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            server_default=sa.text("'waiting'"),
            nullable=False,
        ),
        sa.Column("enabled", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("disabled_by", sa.Uuid(), nullable=True),
        sa.Column("archived", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("archived_reason", sa.String(length=255), nullable=True),
        sa.Column("archived_by", sa.Uuid(), nullable=True),
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("doc_type", sa.String(length=40), nullable=True),
        sa.Column("doc_metadata", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column(
            "doc_form",
            sa.Enum(
                "text_model",
                "qa_model",
                "hierarchical_model",
                name="doc_form",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            server_default=sa.text("'text_model'"),
            nullable=False,
        ),
        sa.Column("doc_language", sa.String(length=255), nullable=True),
        sa.Column("need_summary", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["datasets.id"],
            name=op.f("fk_documents_dataset_id_datasets"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["dataset_process_rule_id"],
            ["dataset_process_rules.id"],
            name=op.f("fk_documents_dataset_process_rule_id_dataset_process_rules"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_documents_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_documents")),
    )
    op.create_index(op.f("ix_documents_dataset_id"), "documents", ["dataset_id"], unique=False)
    op.create_index(
        op.f("ix_documents_dataset_process_rule_id"),
        "documents",
        ["dataset_process_rule_id"],
        unique=False,
    )
    op.create_index(
        "ix_documents_indexing_status_unfinished",
        "documents",
        ["indexing_status"],
        unique=False,
        postgresql_where=sa.text(
            "indexing_status IN ('waiting', 'parsing', 'cleaning', 'splitting', 'indexing')"
        ),
    )
    op.create_index(op.f("ix_documents_tenant_id"), "documents", ["tenant_id"], unique=False)
    op.create_table(
        "dataset_auto_disable_logs",
        sa.Column("id", sa.Uuid(), server_default=sa.text("uuidv7()"), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("dataset_id", sa.Uuid(), nullable=False),
        sa.Column("document_id", sa.Uuid(), nullable=False),
        sa.Column("notified", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["datasets.id"],
            name=op.f("fk_dataset_auto_disable_logs_dataset_id_datasets"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["documents.id"],
            name=op.f("fk_dataset_auto_disable_logs_document_id_documents"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_dataset_auto_disable_logs_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dataset_auto_disable_logs")),
    )
    op.create_index(
        op.f("ix_dataset_auto_disable_logs_dataset_id"),
        "dataset_auto_disable_logs",
        ["dataset_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_dataset_auto_disable_logs_document_id"),
        "dataset_auto_disable_logs",
        ["document_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_dataset_auto_disable_logs_tenant_id_notified"),
        "dataset_auto_disable_logs",
        ["tenant_id", "notified"],
        unique=False,
    )
    op.create_table(
        "dataset_metadata_bindings",
        sa.Column("id", sa.Uuid(), server_default=sa.text("uuidv7()"), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("dataset_id", sa.Uuid(), nullable=False),
        sa.Column("metadata_id", sa.Uuid(), nullable=False),
        sa.Column("document_id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("created_by", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["datasets.id"],
            name=op.f("fk_dataset_metadata_bindings_dataset_id_datasets"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["documents.id"],
            name=op.f("fk_dataset_metadata_bindings_document_id_documents"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["metadata_id"],
            ["dataset_metadatas.id"],
            name=op.f("fk_dataset_metadata_bindings_metadata_id_dataset_metadatas"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_dataset_metadata_bindings_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dataset_metadata_bindings")),
    )
    op.create_index(
        op.f("ix_dataset_metadata_bindings_dataset_id"),
        "dataset_metadata_bindings",
        ["dataset_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_dataset_metadata_bindings_document_id"),
        "dataset_metadata_bindings",
        ["document_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_dataset_metadata_bindings_metadata_id"),
        "dataset_metadata_bindings",
        ["metadata_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_dataset_metadata_bindings_tenant_id"),
        "dataset_metadata_bindings",
        ["tenant_id"],
        unique=False,
    )
    op.create_table(
        "document_segments",
        sa.Column("id", sa.Uuid(), server_default=sa.text("uuidv7()"), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("dataset_id", sa.Uuid(), nullable=False),
        sa.Column("document_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("word_count", sa.Integer(), nullable=False),
        sa.Column("tokens", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=False),
        sa.Column("index_node_id", sa.String(length=255), nullable=True),
        sa.Column("index_node_hash", sa.String(length=255), nullable=True),
        sa.Column("enabled", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.Column("keywords", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("disabled_by", sa.Uuid(), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "waiting",
                "indexing",
                "completed",
                "error",
                "paused",
                "re_segment",
                name="status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            server_default=sa.text("'waiting'"),
            nullable=False,
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("updated_by", sa.Uuid(), nullable=True),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("indexing_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("stopped_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("hit_count", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["datasets.id"],
            name=op.f("fk_document_segments_dataset_id_datasets"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["documents.id"],
            name=op.f("fk_document_segments_document_id_documents"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_document_segments_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_document_segments")),
        sa.UniqueConstraint(
            "dataset_id",
            "index_node_id",
            name=op.f("uq_document_segments_dataset_id_index_node_id"),
        ),
        sa.UniqueConstraint(
            "document_id", "position", name=op.f("uq_document_segments_document_id_position")
        ),
    )
    op.create_index(
        op.f("ix_document_segments_document_id_status"),
        "document_segments",
        ["document_id", "status"],
        unique=False,
    )
    op.create_index(
        op.f("ix_document_segments_tenant_id"), "document_segments", ["tenant_id"], unique=False
    )
    op.create_table(
        "child_chunks",
        sa.Column("id", sa.Uuid(), server_default=sa.text("uuidv7()"), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("dataset_id", sa.Uuid(), nullable=False),
        sa.Column("document_id", sa.Uuid(), nullable=False),
        sa.Column("segment_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("word_count", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("updated_by", sa.Uuid(), nullable=True),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("indexing_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("index_node_id", sa.String(length=255), nullable=True),
        sa.Column("index_node_hash", sa.String(length=255), nullable=True),
        sa.Column(
            "type",
            sa.Enum(
                "automatic",
                "customized",
                name="type",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            server_default=sa.text("'automatic'"),
            nullable=False,
        ),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["datasets.id"],
            name=op.f("fk_child_chunks_dataset_id_datasets"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["documents.id"],
            name=op.f("fk_child_chunks_document_id_documents"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["segment_id"],
            ["document_segments.id"],
            name=op.f("fk_child_chunks_segment_id_document_segments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_child_chunks_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_child_chunks")),
        sa.UniqueConstraint(
            "dataset_id", "index_node_id", name=op.f("uq_child_chunks_dataset_id_index_node_id")
        ),
        sa.UniqueConstraint(
            "segment_id", "position", name=op.f("uq_child_chunks_segment_id_position")
        ),
    )
    op.create_index(
        op.f("ix_child_chunks_document_id"), "child_chunks", ["document_id"], unique=False
    )
    op.create_index(op.f("ix_child_chunks_tenant_id"), "child_chunks", ["tenant_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_child_chunks_tenant_id"), table_name="child_chunks")
    op.drop_index(op.f("ix_child_chunks_document_id"), table_name="child_chunks")
    op.drop_table("child_chunks")
    op.drop_index(op.f("ix_document_segments_tenant_id"), table_name="document_segments")
    op.drop_index(op.f("ix_document_segments_document_id_status"), table_name="document_segments")
    op.drop_table("document_segments")
    op.drop_index(
        op.f("ix_dataset_metadata_bindings_tenant_id"), table_name="dataset_metadata_bindings"
    )
    op.drop_index(
        op.f("ix_dataset_metadata_bindings_metadata_id"), table_name="dataset_metadata_bindings"
    )
    op.drop_index(
        op.f("ix_dataset_metadata_bindings_document_id"), table_name="dataset_metadata_bindings"
    )
    op.drop_index(
        op.f("ix_dataset_metadata_bindings_dataset_id"), table_name="dataset_metadata_bindings"
    )
    op.drop_table("dataset_metadata_bindings")
    op.drop_index(
        op.f("ix_dataset_auto_disable_logs_tenant_id_notified"),
        table_name="dataset_auto_disable_logs",
    )
    op.drop_index(
        op.f("ix_dataset_auto_disable_logs_document_id"), table_name="dataset_auto_disable_logs"
    )
    op.drop_index(
        op.f("ix_dataset_auto_disable_logs_dataset_id"), table_name="dataset_auto_disable_logs"
    )
    op.drop_table("dataset_auto_disable_logs")
    op.drop_index(op.f("ix_documents_tenant_id"), table_name="documents")
    op.drop_index(
        "ix_documents_indexing_status_unfinished",
        table_name="documents",
        postgresql_where=sa.text(
            "indexing_status IN ('waiting', 'parsing', 'cleaning', 'splitting', 'indexing')"
        ),
    )
    op.drop_index(op.f("ix_documents_dataset_process_rule_id"), table_name="documents")
    op.drop_index(op.f("ix_documents_dataset_id"), table_name="documents")
    op.drop_table("documents")
    op.drop_index(
        op.f("ix_app_annotation_hit_histories_app_id"), table_name="app_annotation_hit_histories"
    )
    op.drop_index(
        op.f("ix_app_annotation_hit_histories_annotation_id"),
        table_name="app_annotation_hit_histories",
    )
    op.drop_table("app_annotation_hit_histories")
    op.drop_index(op.f("ix_message_annotations_app_id"), table_name="message_annotations")
    op.drop_table("message_annotations")
    op.drop_index(op.f("ix_dataset_queries_dataset_id_created_at"), table_name="dataset_queries")
    op.drop_table("dataset_queries")
    op.drop_index(op.f("ix_dataset_process_rules_dataset_id"), table_name="dataset_process_rules")
    op.drop_table("dataset_process_rules")
    op.drop_index(op.f("ix_dataset_metadatas_tenant_id"), table_name="dataset_metadatas")
    op.drop_index(op.f("ix_dataset_metadatas_dataset_id"), table_name="dataset_metadatas")
    op.drop_table("dataset_metadatas")
    op.drop_index(op.f("ix_app_dataset_joins_dataset_id"), table_name="app_dataset_joins")
    op.drop_table("app_dataset_joins")
    op.drop_index(
        op.f("ix_app_annotation_settings_collection_binding_id"),
        table_name="app_annotation_settings",
    )
    op.drop_table("app_annotation_settings")
    op.drop_index(op.f("ix_upload_files_tenant_id"), table_name="upload_files")
    op.drop_table("upload_files")
    op.drop_index(
        op.f("ix_tenant_plugin_auto_upgrade_strategies_upgrade_time_of_day"),
        table_name="tenant_plugin_auto_upgrade_strategies",
    )
    op.drop_table("tenant_plugin_auto_upgrade_strategies")
    op.drop_index(op.f("ix_tenant_account_joins_account_id"), table_name="tenant_account_joins")
    op.drop_table("tenant_account_joins")
    op.drop_index(op.f("ix_datasets_tenant_id"), table_name="datasets")
    op.drop_index(op.f("ix_datasets_collection_binding_id"), table_name="datasets")
    op.drop_table("datasets")
    op.drop_index(op.f("ix_apps_tenant_id"), table_name="apps")
    op.drop_table("apps")
    op.drop_table("tenants")
    op.drop_index(op.f("ix_embeddings_created_at"), table_name="embeddings")
    op.drop_table("embeddings")
    op.drop_table("dataset_collection_bindings")
    op.drop_table("accounts")
