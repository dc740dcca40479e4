"""Conversations and messages of an app, and a message's children.

No foreign key to ``apps`` nor from messages to their conversation (see
:mod:`worker.domain.models.app_data` for the policy): the app deletion removes them in batches,
children first. A message's own children cascade from it as a safety net.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from worker.domain.models.app_data import name_column, text_column
from worker.domain.models.base import Base, created_at, updated_at, uuid_pk


def _message_fk() -> Mapped[uuid.UUID]:
    """``message_id`` of a message's child row (indexed: the deletion finds children by it)."""
    return mapped_column(sa.ForeignKey("messages.id", ondelete="CASCADE"), index=True)


class Conversation(Base):
    """A conversation with an app."""

    __tablename__ = "conversations"
    __table_args__ = (sa.Index(None, "app_id", "id"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    app_id: Mapped[uuid.UUID] = mapped_column()
    mode: Mapped[str] = name_column()
    name: Mapped[str] = name_column()
    status: Mapped[str] = mapped_column(sa.String(255), server_default=sa.text("'normal'"))
    from_source: Mapped[str] = name_column()
    from_end_user_id: Mapped[uuid.UUID | None] = mapped_column()
    from_account_id: Mapped[uuid.UUID | None] = mapped_column()
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()
    is_deleted: Mapped[bool] = mapped_column(server_default=sa.false())


class PinnedConversation(Base):
    """A conversation pinned by a user."""

    __tablename__ = "pinned_conversations"

    id: Mapped[uuid.UUID] = uuid_pk()
    app_id: Mapped[uuid.UUID] = mapped_column()
    conversation_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    created_by_role: Mapped[str] = mapped_column(
        sa.String(255), server_default=sa.text("'end_user'")
    )
    created_by: Mapped[uuid.UUID | None] = mapped_column()
    created_at: Mapped[datetime] = created_at()


class ConversationVariable(Base):
    """A conversation variable of an advanced-chat app (Dify's ``ConversationVariable``)."""

    __tablename__ = "workflow_conversation_variables"
    __table_args__ = (sa.Index(None, "app_id", "id"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    conversation_id: Mapped[uuid.UUID] = mapped_column()
    app_id: Mapped[uuid.UUID] = mapped_column()
    data: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()


class Message(Base):
    """One exchange of a conversation: the user's query and the app's answer."""

    __tablename__ = "messages"
    __table_args__ = (sa.Index(None, "app_id", "id"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    app_id: Mapped[uuid.UUID] = mapped_column()
    conversation_id: Mapped[uuid.UUID] = mapped_column()
    query: Mapped[str] = mapped_column(sa.Text)
    answer: Mapped[str] = mapped_column(sa.Text)
    message_tokens: Mapped[int] = mapped_column(server_default=sa.text("0"))
    answer_tokens: Mapped[int] = mapped_column(server_default=sa.text("0"))
    total_price: Mapped[Decimal | None] = mapped_column(sa.Numeric(10, 7))
    status: Mapped[str] = mapped_column(sa.String(255), server_default=sa.text("'normal'"))
    error: Mapped[str | None] = text_column()
    from_end_user_id: Mapped[uuid.UUID | None] = mapped_column()
    from_account_id: Mapped[uuid.UUID | None] = mapped_column()
    workflow_run_id: Mapped[uuid.UUID | None] = mapped_column()
    created_at: Mapped[datetime] = created_at()


class MessageFeedback(Base):
    """A like or dislike of a message."""

    __tablename__ = "message_feedbacks"

    id: Mapped[uuid.UUID] = uuid_pk()
    app_id: Mapped[uuid.UUID] = mapped_column()
    conversation_id: Mapped[uuid.UUID] = mapped_column()
    message_id: Mapped[uuid.UUID] = _message_fk()
    rating: Mapped[str] = name_column()
    content: Mapped[str | None] = text_column()
    from_source: Mapped[str] = name_column()
    created_at: Mapped[datetime] = created_at()


class MessageChain(Base):
    """An intermediate chain step of a message."""

    __tablename__ = "message_chains"

    id: Mapped[uuid.UUID] = uuid_pk()
    message_id: Mapped[uuid.UUID] = _message_fk()
    type: Mapped[str] = name_column()
    input: Mapped[str | None] = text_column()
    output: Mapped[str | None] = text_column()
    created_at: Mapped[datetime] = created_at()


class MessageAgentThought(Base):
    """A thought (and tool call) of an agent while answering a message."""

    __tablename__ = "message_agent_thoughts"

    id: Mapped[uuid.UUID] = uuid_pk()
    message_id: Mapped[uuid.UUID] = _message_fk()
    message_chain_id: Mapped[uuid.UUID | None] = mapped_column()
    position: Mapped[int] = mapped_column()
    thought: Mapped[str | None] = text_column()
    tool: Mapped[str | None] = text_column()
    observation: Mapped[str | None] = text_column()
    created_at: Mapped[datetime] = created_at()


class MessageFile(Base):
    """A file attached to a message; ``upload_file_id`` names its upload when it was uploaded."""

    __tablename__ = "message_files"

    id: Mapped[uuid.UUID] = uuid_pk()
    message_id: Mapped[uuid.UUID] = _message_fk()
    type: Mapped[str] = name_column()
    transfer_method: Mapped[str] = name_column()
    url: Mapped[str | None] = text_column()
    belongs_to: Mapped[str | None] = mapped_column(sa.String(255))
    # No foreign key: the deletion removes the upload (blob first, then row) itself.
    upload_file_id: Mapped[uuid.UUID | None] = mapped_column()
    created_by_role: Mapped[str] = name_column()
    created_by: Mapped[uuid.UUID] = mapped_column()
    created_at: Mapped[datetime] = created_at()


class SavedMessage(Base):
    """A message saved by a user."""

    __tablename__ = "saved_messages"

    id: Mapped[uuid.UUID] = uuid_pk()
    app_id: Mapped[uuid.UUID] = mapped_column()
    message_id: Mapped[uuid.UUID] = _message_fk()
    created_by_role: Mapped[str] = mapped_column(
        sa.String(255), server_default=sa.text("'end_user'")
    )
    created_by: Mapped[uuid.UUID] = mapped_column()
    created_at: Mapped[datetime] = created_at()
