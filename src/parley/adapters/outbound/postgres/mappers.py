"""Explicit row ↔ entity mapping. The domain never sees a row; the database never sees an entity."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy.engine import RowMapping

from parley.domain.approvals import PendingApproval
from parley.domain.auth import AuthSession
from parley.domain.chat import Conversation, Message, MessageRole, MessageStatus
from parley.domain.users import Email, User


def _utc(moment: datetime) -> datetime:
    # timestamptz comes back in the connection's TimeZone; the domain speaks UTC.
    return moment.astimezone(UTC)


def _utc_or_none(moment: datetime | None) -> datetime | None:
    return None if moment is None else _utc(moment)


def user_from_row(row: RowMapping) -> User:
    return User(
        id=row["id"],
        email=Email(row["email"]),
        password_hash=row["password_hash"],
        created_at=_utc(row["created_at"]),
        updated_at=_utc(row["updated_at"]),
    )


def user_to_row(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "email": user.email.value,
        "password_hash": user.password_hash,
        "created_at": user.created_at,
        "updated_at": user.updated_at,
    }


def auth_session_from_row(row: RowMapping) -> AuthSession:
    return AuthSession(
        id=row["id"],
        user_id=row["user_id"],
        refresh_token_id=row["refresh_token_id"],
        created_at=_utc(row["created_at"]),
        expires_at=_utc(row["expires_at"]),
        revoked_at=_utc_or_none(row["revoked_at"]),
    )


def auth_session_to_row(auth_session: AuthSession) -> dict[str, Any]:
    return {
        "id": auth_session.id,
        "user_id": auth_session.user_id,
        "refresh_token_id": auth_session.refresh_token_id,
        "created_at": auth_session.created_at,
        "expires_at": auth_session.expires_at,
        "revoked_at": auth_session.revoked_at,
    }


def conversation_from_row(row: RowMapping) -> Conversation:
    return Conversation(
        id=row["id"],
        user_id=row["user_id"],
        name=row["name"],
        created_at=_utc(row["created_at"]),
        updated_at=_utc(row["updated_at"]),
        last_active_at=_utc(row["last_active_at"]),
        message_count=row["message_count"],
    )


def conversation_to_row(conversation: Conversation) -> dict[str, Any]:
    return {
        "id": conversation.id,
        "user_id": conversation.user_id,
        "name": conversation.name,
        "created_at": conversation.created_at,
        "updated_at": conversation.updated_at,
        "last_active_at": conversation.last_active_at,
        "message_count": conversation.message_count,
    }


def message_from_row(row: RowMapping) -> Message:
    return Message(
        id=row["id"],
        conversation_id=row["conversation_id"],
        role=MessageRole(row["role"]),
        content=row["content"],
        status=MessageStatus(row["status"]),
        created_at=_utc(row["created_at"]),
    )


def message_to_row(message: Message) -> dict[str, Any]:
    return {
        "id": message.id,
        "conversation_id": message.conversation_id,
        "role": message.role.value,
        "content": message.content,
        "status": message.status.value,
        "created_at": message.created_at,
    }


def pending_approval_to_json(approval: PendingApproval) -> dict[str, Any]:
    """The ``conversations.pending_approval`` document (times as ISO 8601 strings)."""
    return {
        "id": str(approval.id),
        "tool": approval.tool,
        "arguments": approval.arguments,
        "requested_at": approval.requested_at.isoformat(),
        "expires_at": approval.expires_at.isoformat(),
        "reply_so_far": approval.reply_so_far,
    }


def pending_approval_from_json(document: dict[str, Any]) -> PendingApproval:
    return PendingApproval(
        id=UUID(document["id"]),
        tool=document["tool"],
        arguments=dict(document["arguments"]),
        requested_at=_utc(datetime.fromisoformat(document["requested_at"])),
        expires_at=_utc(datetime.fromisoformat(document["expires_at"])),
        reply_so_far=document.get("reply_so_far", ""),
    )
