"""What an app deletion removes, in order: children before parents.

Dify's 19 steps (§3.4 of the reference), reordered where Dify deleted parents first
(workflows before their runs, conversations before their messages), and completed with what
Dify leaves behind (the annotation vectors, the message files' uploads and blobs). Tables that
cascade from ``apps`` (annotations, their settings and hits, dataset joins, trace configs) are
gone with the app row; the small configuration tables that cascade too are walked anyway, for
rows a cascade cannot reach (none today; Dify's schema has no foreign keys at all).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from worker.domain.models import (
    ApiToken,
    AppMCPServer,
    AppModelConfig,
    Conversation,
    ConversationVariable,
    EndUser,
    InstalledApp,
    MessageAgentThought,
    MessageChain,
    MessageFeedback,
    MessageFile,
    PinnedConversation,
    RecommendedApp,
    SavedMessage,
    Site,
    TagBinding,
    ToolWorkflowProvider,
    Workflow,
    WorkflowAppLog,
    WorkflowNodeExecution,
    WorkflowRun,
)


@dataclass(frozen=True)
class Step:
    """Delete ``table``'s rows whose ``column`` is the app id (and ``tenant_id`` the app's
    workspace when ``by_tenant``: the table's index leads with it)."""

    table: Any
    by_tenant: bool = False
    column: str = "app_id"

    @property
    def name(self) -> str:
        return str(self.table.__tablename__)


#: Before the messages: configuration, then workflow logs, node executions, runs, workflows.
#: Installations are found in every workspace that installed the app (Dify only looked in the
#: app's own workspace).
BEFORE_MESSAGES: tuple[Step, ...] = (
    Step(AppModelConfig),
    Step(Site),
    Step(AppMCPServer),
    Step(ApiToken),
    Step(InstalledApp),
    Step(RecommendedApp),
    Step(WorkflowAppLog, by_tenant=True),
    Step(WorkflowNodeExecution, by_tenant=True),
    Step(WorkflowRun, by_tenant=True),
    Step(Workflow, by_tenant=True),
)

#: A batch of messages' children, deleted by ``message_id`` before the messages themselves.
#: The files' uploads (blob, then row) go before the ``message_files`` rows that name them.
MESSAGE_CHILDREN: tuple[Any, ...] = (
    MessageFeedback,
    MessageChain,
    MessageAgentThought,
    MessageFile,
    SavedMessage,
)

#: After the messages: the conversations and what hangs on them, then the rest.
AFTER_MESSAGES: tuple[Step, ...] = (
    Step(PinnedConversation),
    Step(ConversationVariable),
    Step(Conversation),
    Step(ToolWorkflowProvider),
    Step(TagBinding, by_tenant=True, column="target_id"),
    Step(EndUser, by_tenant=True),
)

#: Name of the annotation vectors in the outcome.
VECTORS = "embedding_vectors"
#: Name of the message files' upload rows in the outcome.
UPLOADS = "upload_files"


def outcome_tables() -> list[str]:
    """Every name the outcome lists, in the order the job deletes."""
    return [
        *(s.name for s in BEFORE_MESSAGES),
        UPLOADS,
        *(t.__tablename__ for t in MESSAGE_CHILDREN),
        "messages",
        *(s.name for s in AFTER_MESSAGES),
        VECTORS,
    ]
