"""The schema, as SQLAlchemy Core tables: the single source Alembic compares migrations against.

Invariants the database guards itself (so a bug above cannot corrupt data):
- one account per e-mail (``uq_users_email``; the domain stores addresses lower-cased);
- deleting a user cascades to auth sessions, conversations and messages;
- message roles/statuses are known values; counts are never negative;
- a reply claim has both an id and an expiry, or neither; only a held claim waits for an approval;
- a reply lands only in the history version its turn started in (``history_version``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from parley.domain.chat import MAX_CONVERSATION_NAME_LENGTH, MessageRole, MessageStatus

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

EMAIL_UNIQUE_CONSTRAINT = "uq_users_email"


def _timestamp(name: str, *, nullable: bool = False) -> Column[datetime]:
    return Column(name, DateTime(timezone=True), nullable=nullable)


def _one_of(column: str, values: list[str]) -> str:
    quoted = ", ".join(f"'{value}'" for value in values)
    return f"{column} IN ({quoted})"


users = Table(
    "users",
    metadata,
    Column("id", Uuid(), primary_key=True),
    Column("email", Text(), nullable=False, unique=True),
    Column("password_hash", Text(), nullable=False),
    _timestamp("created_at"),
    _timestamp("updated_at"),
)

auth_sessions = Table(
    "auth_sessions",
    metadata,
    Column("id", Uuid(), primary_key=True),
    Column("user_id", Uuid(), ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("refresh_token_id", Uuid(), nullable=False),
    _timestamp("created_at"),
    _timestamp("expires_at"),
    _timestamp("revoked_at", nullable=True),
)

conversations = Table(
    "conversations",
    metadata,
    Column("id", Uuid(), primary_key=True),
    Column("user_id", Uuid(), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("name", Text(), nullable=False),
    _timestamp("created_at"),
    _timestamp("updated_at"),
    _timestamp("last_active_at"),
    Column("message_count", Integer(), nullable=False, server_default=text("0")),
    # Bumped when the history is cleared: a reply is only stored into the version it answers.
    Column("history_version", Integer(), nullable=False, server_default=text("0")),
    Column("reply_claim_id", Uuid(), nullable=True),
    _timestamp("reply_claim_expires_at", nullable=True),
    # The tool call a paused turn waits to have approved (mappers.pending_approval_to_json).
    Column("pending_approval", JSONB(none_as_null=True), nullable=True),
    CheckConstraint(f"char_length(name) BETWEEN 1 AND {MAX_CONVERSATION_NAME_LENGTH}", name="name_length"),
    CheckConstraint("message_count >= 0", name="message_count_not_negative"),
    CheckConstraint(
        "(reply_claim_id IS NULL) = (reply_claim_expires_at IS NULL)", name="reply_claim_complete"
    ),
    CheckConstraint(
        "pending_approval IS NULL OR reply_claim_id IS NOT NULL", name="pending_approval_claimed"
    ),
)

# Serves list_for_owner's keyset scan: WHERE user_id = ? AND (last_active_at, id) < (?, ?).
Index(
    "ix_conversations_user_id_recent",
    conversations.c.user_id,
    conversations.c.last_active_at.desc(),
    conversations.c.id.desc(),
)

messages = Table(
    "messages",
    metadata,
    Column("id", Uuid(), primary_key=True),
    # Timestamps can tie; the identity gives a strict insertion order to page by.
    Column("seq", BigInteger(), Identity(always=True), nullable=False),
    Column(
        "conversation_id",
        Uuid(),
        ForeignKey("conversations.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("role", Text(), nullable=False),
    Column("content", Text(), nullable=False),
    Column("status", Text(), nullable=False),
    _timestamp("created_at"),
    CheckConstraint(_one_of("role", [r.value for r in MessageRole]), name="role_known"),
    CheckConstraint(_one_of("status", [s.value for s in MessageStatus]), name="status_known"),
    Index("ix_messages_conversation_id_seq", "conversation_id", "seq"),
)
