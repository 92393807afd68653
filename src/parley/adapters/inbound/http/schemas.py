"""Pydantic request/response models: the HTTP shapes of API.md, with examples for /docs.

Business rules (password policy, e-mail normalisation, content rules) live in the
domain; these models only check shape, so every rule is reported once, in one format.

Two rules hold for every request model (and query parameter):
- every string is a :data:`Text`: no NUL, no lone surrogate, whatever the field;
- a length limit the domain enforces is documented here from the domain's own constant
  (:func:`_domain_length`) but not checked here, so the domain reports it in its words,
  together with the other rules it checks (a register lists every broken password rule).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, JsonValue
from pydantic.fields import FieldInfo

from parley.domain.approvals import MAX_REJECTION_REASON_LENGTH, PendingApproval
from parley.domain.chat import (
    DEFAULT_MAX_MESSAGE_LENGTH,
    MAX_CONVERSATION_NAME_LENGTH,
    Conversation,
    Message,
    first_unstorable,
)
from parley.domain.memory import Memory
from parley.domain.users import MAX_EMAIL_LENGTH, MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH, User

_EMAIL = "ada@example.com"
_PASSWORD = "Str0ng!Passw0rd"
_MAX_TOKEN_LENGTH = 4096


def refuse_unstorable_text(value: Any) -> Any:
    """Refuse the strings no layer below can carry, with a 422 naming the field.

    - NUL: PostgreSQL ``text`` cannot hold it (psycopg raises ``DataError``);
    - a lone UTF-16 surrogate (``"\\ud800"`` in JSON): not encodable as UTF-8, so neither
      PostgreSQL, bcrypt's input nor a log line can take it.

    Anything that is not a string passes through to the type check.
    """
    if not isinstance(value, str):
        return value
    unstorable = first_unstorable(value)
    if unstorable == "\x00":
        raise ValueError("Must not contain NUL characters")
    if unstorable is not None:
        raise ValueError("Must not contain unpaired surrogate characters")
    return value


Text = Annotated[str, BeforeValidator(refuse_unstorable_text)]
"""The type of every string a request carries: body fields, form fields, query parameters."""


def _domain_length(*, max_length: int, min_length: int | None = None, description: str | None = None) -> Any:
    """Document (``minLength``/``maxLength``) a length limit that the domain enforces."""
    limits: dict[str, JsonValue] = {"maxLength": max_length}
    if min_length is not None:
        limits["minLength"] = min_length
    field: FieldInfo = Field(json_schema_extra=limits, description=description)
    return field


EmailText = Annotated[Text, _domain_length(max_length=MAX_EMAIL_LENGTH)]
NewPassword = Annotated[Text, _domain_length(min_length=MIN_PASSWORD_LENGTH, max_length=MAX_PASSWORD_LENGTH)]
PresentedPassword = Annotated[Text, _domain_length(max_length=MAX_PASSWORD_LENGTH)]
"""A password to check (login, current password): no valid one is longer than the policy allows."""
SessionName = Annotated[Text, _domain_length(min_length=1, max_length=MAX_CONVERSATION_NAME_LENGTH)]
MessageText = Annotated[
    Text,
    _domain_length(
        min_length=1,
        max_length=DEFAULT_MAX_MESSAGE_LENGTH,
        description="At most MAX_MESSAGE_CHARS characters (default "
        f"{DEFAULT_MAX_MESSAGE_LENGTH:,}); no control characters except tab, CR and LF.",
    ),
]
TokenText = Annotated[Text, Field(max_length=_MAX_TOKEN_LENGTH)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=False)


class RegisterRequest(_Strict):
    email: EmailText = Field(examples=[_EMAIL])
    password: NewPassword = Field(examples=[_PASSWORD])


class LoginRequest(_Strict):
    email: EmailText = Field(examples=[_EMAIL])
    password: PresentedPassword = Field(examples=[_PASSWORD])


class LoginForm(_Strict):
    """The OAuth2 password form (what Swagger's Authorize button sends)."""

    username: EmailText
    password: PresentedPassword


class RefreshRequest(_Strict):
    refresh_token: TokenText = Field(min_length=1)


class LogoutRequest(_Strict):
    refresh_token: TokenText | None = None


class ChangeEmailRequest(_Strict):
    email: EmailText = Field(examples=["ada.lovelace@example.com"])
    current_password: PresentedPassword = Field(examples=[_PASSWORD])


class ChangePasswordRequest(_Strict):
    current_password: PresentedPassword = Field(examples=[_PASSWORD])
    new_password: NewPassword = Field(examples=["An0ther!Passw0rd"])


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
    name: SessionName | None = Field(None, examples=["Trip to Lisbon"])


class RenameSessionRequest(_Strict):
    name: SessionName = Field(examples=["Trip to Porto"])


class SendMessageRequest(_Strict):
    content: MessageText = Field(examples=["What is 17 * 23?"])


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


class ApprovalOut(BaseModel):
    """A tool call the agent waits to have approved (README "Approving tool calls")."""

    id: UUID
    tool: str = Field(examples=["calculator"])
    arguments: dict[str, Any] = Field(examples=[{"expression": "17 * 23"}])
    requested_at: datetime
    expires_at: datetime
    reply_so_far: str = Field(
        description="What the agent said in this turn before it asked (the stored reply starts with it)",
        examples=["Let me compute that."],
    )

    @classmethod
    def of(cls, approval: PendingApproval) -> ApprovalOut:
        return cls(
            id=approval.id,
            tool=approval.tool,
            arguments=approval.arguments,
            requested_at=approval.requested_at,
            expires_at=approval.expires_at,
            reply_so_far=approval.reply_so_far,
        )


class AwaitingApprovalOut(BaseModel):
    """202 from sending a message: the turn paused on a tool call needing approval."""

    message: MessageOut
    approval: ApprovalOut


class DecisionOut(BaseModel):
    """From deciding an approval: the stored ``reply`` (200), or, when the agent paused again on
    another call, the new ``approval`` (202)."""

    reply: MessageOut | None = None
    approval: ApprovalOut | None = None


RejectionReason = Annotated[Text, _domain_length(max_length=MAX_REJECTION_REASON_LENGTH)]


class ApprovalDecisionRequest(_Strict):
    id: UUID = Field(description="The approval's id, from the `approval` event or GET .../approval")
    decision: Literal["approve", "reject", "edit"]
    reason: RejectionReason | None = Field(
        None,
        description="With reject: why (the model is told). At most 2,000 characters.",
        examples=["Not now"],
    )
    arguments: dict[str, Any] | None = Field(
        None, description="With edit (required): the arguments to run the tool with instead."
    )


class MemoryOut(BaseModel):
    """A fact Parley remembers about the user, from one of their chats."""

    id: UUID
    text: str = Field(examples=["The user's name is Ada"])
    created_at: datetime

    @classmethod
    def of(cls, memory: Memory) -> MemoryOut:
        return cls(id=memory.id, text=memory.text, created_at=memory.created_at)


class MemoryPageOut(BaseModel):
    items: list[MemoryOut]
    next_cursor: str | None
