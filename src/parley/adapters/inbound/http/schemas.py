"""Pydantic request/response models: the HTTP shapes of API.md, with examples for /docs.

Business rules (password policy, e-mail normalisation, content rules) live in the
domain; these models only check shape, so every rule is reported once, in one format.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from parley.domain.chat import Conversation, Message
from parley.domain.users import User

_EMAIL = "ada@example.com"
_PASSWORD = "Str0ng!Passw0rd"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=False)


class RegisterRequest(_Strict):
    email: str = Field(max_length=320, examples=[_EMAIL])
    password: str = Field(max_length=1024, examples=[_PASSWORD])


class LoginRequest(_Strict):
    email: str = Field(max_length=320, examples=[_EMAIL])
    password: str = Field(max_length=1024, examples=[_PASSWORD])


class LoginForm(_Strict):
    """The OAuth2 password form (what Swagger's Authorize button sends)."""

    username: str = Field(max_length=320)
    password: str = Field(max_length=1024)


class RefreshRequest(_Strict):
    refresh_token: str = Field(min_length=1, max_length=4096)


class LogoutRequest(_Strict):
    refresh_token: str | None = Field(None, max_length=4096)


class ChangeEmailRequest(_Strict):
    email: str = Field(max_length=320, examples=["ada.lovelace@example.com"])
    current_password: str = Field(max_length=1024, examples=[_PASSWORD])


class ChangePasswordRequest(_Strict):
    current_password: str = Field(max_length=1024, examples=[_PASSWORD])
    new_password: str = Field(max_length=1024, examples=["An0ther!Passw0rd"])


class UserOut(BaseModel):
    id: UUID
    email: str = Field(examples=[_EMAIL])
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(id=user.id, email=user.email.value, created_at=user.created_at, updated_at=user.updated_at)


class TokenPairOut(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="Access-token lifetime in seconds", examples=[3600])
    refresh_expires_in: int = Field(description="Refresh-token lifetime in seconds", examples=[31536000])


class ErrorOut(BaseModel):
    detail: str


class FieldErrorOut(BaseModel):
    field: str = Field(examples=["password"])
    message: str = Field(examples=["Password must contain at least one number"])


class ValidationErrorOut(BaseModel):
    detail: str = Field(examples=["Validation error"])
    errors: list[FieldErrorOut]


class HealthOut(BaseModel):
    status: Literal["ok", "unavailable"]
    version: str
    environment: str
    checks: dict[str, str] = Field(examples=[{"database": "ok"}])


class CreateSessionRequest(_Strict):
    name: str | None = Field(None, max_length=1000, examples=["Trip to Lisbon"])


class RenameSessionRequest(_Strict):
    name: str = Field(max_length=1000, examples=["Trip to Porto"])


class SendMessageRequest(_Strict):
    content: str = Field(examples=["What is 17 * 23?"])


class SessionOut(BaseModel):
    id: UUID
    name: str
    created_at: datetime
    updated_at: datetime
    message_count: int

    @classmethod
    def of(cls, conversation: Conversation) -> SessionOut:
        return cls(
            id=conversation.id,
            name=conversation.name,
            created_at=conversation.created_at,
            updated_at=conversation.updated_at,
            message_count=conversation.message_count,
        )


class SessionPageOut(BaseModel):
    items: list[SessionOut]
    next_cursor: str | None


class MessageOut(BaseModel):
    id: UUID
    session_id: UUID
    role: Literal["user", "assistant"]
    content: str
    created_at: datetime
    status: Literal["complete", "incomplete", "failed"]

    @classmethod
    def of(cls, message: Message) -> MessageOut:
        return cls(
            id=message.id,
            session_id=message.conversation_id,
            role=message.role.value,
            content=message.content,
            created_at=message.created_at,
            status=message.status.value,
        )


class MessagePageOut(BaseModel):
    items: list[MessageOut]
    next_cursor: str | None


class ExchangeOut(BaseModel):
    message: MessageOut
    reply: MessageOut
