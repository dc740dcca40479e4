"""An app with rows in every table its deletion walks, a second app beside it, and counts.

The app has thousands of messages (each with a feedback, a chain, an agent thought and a saved
message) and workflow runs (each with node executions and an app log), message files with
uploaded blobs, annotation vectors in a collection shared with the other app, and one row of
everything else. The other app (same workspace) gets the same on a small scale: a deletion must
leave it whole.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import orm

from tests import annotations, factories
from tests.cleanup_scenario import upload_rows  # re-exported: counted the same way
from worker import db
from worker.domain.models import App, EmbeddingVector, Tenant
from worker.domain.storage import LocalStorage

#: Tables with an ``app_id`` column (rows counted by it).
BY_APP = (
    "app_model_configs", "sites", "app_mcp_servers", "api_tokens", "installed_apps",
    "recommended_apps", "workflows", "workflow_runs", "workflow_node_executions",
    "workflow_app_logs", "conversations", "pinned_conversations", "messages",
    "message_feedbacks", "saved_messages", "tool_workflow_providers", "end_users",
    "workflow_conversation_variables", "message_annotations", "app_annotation_settings",
)  # fmt: skip
#: A message's children without an ``app_id`` (counted through a join or the message ids).
BY_MESSAGE = ("message_chains", "message_agent_thoughts", "message_files")


@dataclass(frozen=True)
class Scenario:
    tenant_id: str
    app_id: str
    other_app_id: str
    #: The annotation collection both apps use.
    collection: str
    #: Upload file id -> storage key, of the app's message files.
    files: dict[str, str]
    #: Upload file id -> storage key, of the other app's message files.
    other_files: dict[str, str]


def build(
    storage: Path, *, conversations: int = 100, per_conversation: int = 25, runs: int = 2000
) -> Scenario:
    """The app (``conversations x per_conversation`` messages, ``runs`` workflow runs) and a
    small other app."""
    with db.session_scope() as session:
        tenant = factories.make_tenant(session)
        elsewhere = factories.make_tenant(session, name="Installs it")
        app = annotations.make_app(session, tenant)
        other = annotations.make_app(session, tenant, name="Other bot")
        ids = (str(tenant.id), str(app.id), str(other.id))
        elsewhere_id = elsewhere.id
    binding = annotations.binding("text-embedding-3-small")
    files: list[dict[str, str]] = []
    for app_id, scale in ((ids[1], 1), (ids[2], 0)):
        with db.session_scope() as session:
            tenant = session.get(Tenant, uuid.UUID(ids[0]))
            found = session.get(App, uuid.UUID(app_id))
            assert tenant is not None and found is not None
            _config(session, tenant, found, elsewhere_id=elsewhere_id)
            _conversations(
                session, found.id,
                conversations if scale else 2, per_conversation if scale else 3,
            )  # fmt: skip
            _workflows(session, tenant.id, found.id, runs if scale else 5)
            files.append(_files(session, tenant, found.id, storage, 5 if scale else 2))
            _annotations(session, found, binding, 4 if scale else 3)
    return Scenario(ids[0], ids[1], ids[2], binding.collection, files[0], files[1])


def _config(session: orm.Session, tenant: Tenant, app: App, *, elsewhere_id: uuid.UUID) -> None:
    p = {"t": tenant.id, "a": app.id, "u": factories.USER, "e": elsewhere_id}
    for statement in (
        "INSERT INTO app_model_configs (app_id, provider, model_id) VALUES (:a, 'openai', 'gpt')",
        "INSERT INTO sites (app_id, title, code) VALUES (:a, 'Bot', md5(random()::text))",
        "INSERT INTO app_mcp_servers (tenant_id, app_id, name, server_code)"
        " VALUES (:t, :a, 'mcp', md5(random()::text))",
        "INSERT INTO api_tokens (app_id, tenant_id, type, token)"
        " VALUES (:a, :t, 'app', md5(random()::text))",
        "INSERT INTO installed_apps (tenant_id, app_id, app_owner_tenant_id)"
        " VALUES (:t, :a, :t), (:e, :a, :t)",
        "INSERT INTO recommended_apps (app_id, category) VALUES (:a, 'assistant')",
        "INSERT INTO tool_workflow_providers (tenant_id, app_id, name) VALUES (:t, :a, 'tool')",
        "WITH tag AS (INSERT INTO tags (tenant_id, type, name) VALUES (:t, 'app', 'support')"
        " RETURNING id) INSERT INTO tag_bindings (tenant_id, tag_id, target_id)"
        " SELECT :t, id, :a FROM tag",
        "INSERT INTO end_users (tenant_id, app_id, type, session_id)"
        " SELECT :t, :a, 'browser', 's' || g FROM generate_series(1, 50) AS g",
    ):
        session.execute(sa.text(statement), p)


def _conversations(session: orm.Session, app_id: uuid.UUID, count: int, per: int) -> None:
    p = {"a": app_id, "n": count, "per": per, "u": factories.USER}
    for statement in (
        "INSERT INTO conversations (app_id, mode, name, from_source)"
        " SELECT :a, 'chat', 'c' || g, 'api' FROM generate_series(1, :n) AS g",
        "INSERT INTO pinned_conversations (app_id, conversation_id, created_by)"
        " SELECT app_id, id, :u FROM conversations WHERE app_id = :a",
        "INSERT INTO workflow_conversation_variables (conversation_id, app_id, data)"
        " SELECT id, app_id, '{}' FROM conversations WHERE app_id = :a",
        "INSERT INTO messages (app_id, conversation_id, query, answer)"
        " SELECT :a, c.id, 'question ' || g, 'answer' FROM conversations AS c,"
        " generate_series(1, :per) AS g WHERE c.app_id = :a",
        "INSERT INTO message_feedbacks (app_id, conversation_id, message_id, rating, from_source)"
        " SELECT app_id, conversation_id, id, 'like', 'user' FROM messages WHERE app_id = :a",
        "INSERT INTO message_chains (message_id, type) SELECT id, 'system' FROM messages"
        " WHERE app_id = :a",
        "INSERT INTO message_agent_thoughts (message_id, position) SELECT id, 1 FROM messages"
        " WHERE app_id = :a",
        "INSERT INTO saved_messages (app_id, message_id, created_by)"
        " SELECT app_id, id, :u FROM messages WHERE app_id = :a",
        "INSERT INTO message_files (message_id, type, transfer_method, url, created_by_role,"
        " created_by) SELECT id, 'image', 'remote_url', 'https://x.example/a.png', 'end_user', :u"
        " FROM messages WHERE app_id = :a ORDER BY id LIMIT 10",
    ):
        session.execute(sa.text(statement), p)


def _workflows(session: orm.Session, tenant_id: uuid.UUID, app_id: uuid.UUID, runs: int) -> None:
    p = {"t": tenant_id, "a": app_id, "n": runs}
    for statement in (
        "INSERT INTO workflows (tenant_id, app_id, type, version)"
        " SELECT :t, :a, 'workflow', v FROM unnest(ARRAY['draft', 'v1', 'v2']) AS v",
        "INSERT INTO workflow_runs (tenant_id, app_id, type, triggered_from, version, status,"
        " created_by_role) SELECT :t, :a, 'workflow', 'app-run', 'v1', 'succeeded', 'account'"
        " FROM generate_series(1, :n)",
        "INSERT INTO workflow_node_executions (tenant_id, app_id, workflow_run_id,"
        " triggered_from, node_id, node_type, title, status) SELECT :t, :a, r.id,"
        " 'workflow-run', 'n' || g, 'llm', 'LLM', 'succeeded'"
        " FROM workflow_runs AS r, generate_series(1, 2) AS g WHERE r.app_id = :a",
        "INSERT INTO workflow_app_logs (tenant_id, app_id, workflow_run_id, created_from,"
        " created_by_role) SELECT :t, :a, id, 'service-api', 'end_user' FROM workflow_runs"
        " WHERE app_id = :a",
    ):
        session.execute(sa.text(statement), p)


def _files(
    session: orm.Session, tenant: Tenant, app_id: uuid.UUID, storage: Path, count: int
) -> dict[str, str]:
    """``count`` uploaded files, each attached to one of the app's messages."""
    messages = session.scalars(
        sa.text("SELECT id FROM messages WHERE app_id = :a ORDER BY id DESC LIMIT :n"),
        {"a": app_id, "n": count},
    ).all()
    found = {}
    for index, message in enumerate(messages):
        upload = factories.make_upload(
            session, tenant, storage, f"photo{index}.png", b"\x89PNG " + bytes([index])
        )
        session.execute(
            sa.text(
                "INSERT INTO message_files (message_id, type, transfer_method, upload_file_id,"
                " created_by_role, created_by) VALUES (:m, 'image', 'local_file', :f,"
                " 'end_user', :u)"
            ),
            {"m": message, "f": upload.id, "u": factories.USER},
        )
        found[str(upload.id)] = upload.key
    return found


def _annotations(session: orm.Session, app: App, binding: object, count: int) -> None:
    """``count`` annotations with their vectors in the shared collection, replies enabled."""
    annotations.make_setting(session, app, binding)  # type: ignore[arg-type]
    for index in range(count):
        annotation = annotations.make_annotation(session, app, f"question {index}?")
        session.add(
            EmbeddingVector(
                collection=binding.collection,  # type: ignore[attr-defined]
                node_id=str(annotation.id),
                content=annotation.question,
                metadata_={
                    "doc_id": str(annotation.id),
                    "annotation_id": str(annotation.id),
                    "app_id": str(app.id),
                },
                dimension=3,
                embedding=[1.0, 2.0, float(index)],
            )
        )


def counts(app_id: str) -> dict[str, int]:
    """Rows of the app per table, its annotation vectors and its ``apps`` row."""
    p = {"a": uuid.UUID(app_id)}
    found: dict[str, int] = {}
    with db.session_scope() as session:
        for table in BY_APP:
            query = f"SELECT count(*) FROM {table} WHERE app_id = :a"
            found[table] = int(session.scalar(sa.text(query), p) or 0)
        for table in BY_MESSAGE:
            query = (
                f"SELECT count(*) FROM {table} AS c JOIN messages AS m ON m.id = c.message_id"
                " WHERE m.app_id = :a"
            )
            found[table] = int(session.scalar(sa.text(query), p) or 0)
        found["tag_bindings"] = int(
            session.scalar(sa.text("SELECT count(*) FROM tag_bindings WHERE target_id = :a"), p)
            or 0
        )
        found["embedding_vectors"] = int(
            session.scalar(
                sa.select(sa.func.count()).where(
                    EmbeddingVector.metadata_["app_id"].astext == app_id
                )
            )
            or 0
        )
        found["apps"] = int(
            session.scalar(sa.text("SELECT count(*) FROM apps WHERE id = :a"), p) or 0
        )
    return found


def orphans() -> dict[str, int]:
    """Children whose parent is gone (the message tables' cascades make these impossible)."""
    found = {}
    with db.session_scope() as session:
        for table in (*BY_MESSAGE, "message_feedbacks", "saved_messages"):
            query = (
                f"SELECT count(*) FROM {table} AS c"
                " WHERE NOT EXISTS (SELECT 1 FROM messages AS m WHERE m.id = c.message_id)"
            )
            found[table] = int(session.scalar(sa.text(query)) or 0)
    return found


def blobs(storage: Path, keys: object) -> list[str]:
    """The keys whose blob is still in ``storage``."""
    local = LocalStorage(storage)
    return [k for k in keys if local.exists(k)]  # type: ignore[attr-defined]


def refuse(table: str, message: str, *, event: str = "DELETE") -> None:
    """A trigger that makes every ``event`` on ``table`` raise ``message``."""
    with db.session_scope() as session:
        session.execute(
            sa.text(
                "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS"
                f" $$ BEGIN RAISE EXCEPTION '{message}'; END $$;"
                f" CREATE TRIGGER keep BEFORE {event} ON {table}"
                " FOR EACH ROW EXECUTE FUNCTION refuse()"
            )
        )
