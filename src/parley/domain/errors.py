"""The domain's error tree.

The core raises these typed errors; the HTTP edge maps each class to a status
code exactly once (``adapters/inbound/http/errors.py``), and words the answer in the
API's own vocabulary where it differs (a conversation is a "session" there).
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID


class DomainError(Exception):
    """Base of every error the business rules raise."""

    detail: str = "Domain rule violated"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail or self.detail)
        if detail is not None:
            self.detail = detail


@dataclass(frozen=True, slots=True)
class FieldProblem:
    """One broken rule of one input field (``field`` is a dotted name)."""

    field: str
    message: str


class ValidationFailed(DomainError):
    """Input broke one or more value-object rules; one problem per broken rule."""

    detail = "Validation error"

    def __init__(self, problems: list[FieldProblem] | tuple[FieldProblem, ...]) -> None:
        super().__init__()
        self.problems: tuple[FieldProblem, ...] = tuple(problems)

    @classmethod
    def single(cls, field: str, message: str) -> ValidationFailed:
        return cls([FieldProblem(field, message)])


class EmailAlreadyRegistered(DomainError):
    detail = "Email already registered"


class InvalidCredentials(DomainError):
    """Login failed; deliberately says nothing about which part was wrong."""

    detail = "Invalid credentials"


class NotAuthenticated(DomainError):
    """A token is missing, malformed, expired, revoked or of the wrong type."""

    detail = "Not authenticated"


class RefreshTokenReused(NotAuthenticated):
    """A refresh token was presented again: its whole login was revoked.

    Carries the (validly signed) token's owner so the edge can audit a likely theft.
    """

    def __init__(self, user_id: UUID) -> None:
        super().__init__()
        self.user_id = user_id


class CurrentPasswordIncorrect(DomainError):
    detail = "Current password is incorrect"


class NotFound(DomainError):
    """Base for resources that do not exist *or belong to someone else*."""

    detail = "Not found"


class UserNotFound(NotFound):
    detail = "User not found"


class ConversationNotFound(NotFound):
    detail = "Conversation not found"


class MemoryNotFound(NotFound):
    """No such memory among the caller's (another user's memories are not found either)."""

    detail = "Memory not found"


class ReplyInProgress(DomainError):
    """Another reply is being generated in the same conversation."""

    detail = "A reply is already being generated in this conversation"


class ApprovalPending(DomainError):
    """The conversation's turn is paused until the user decides about a tool call: a new message
    waits until then (or until the approval expires)."""

    detail = "A tool call in this conversation is awaiting approval"


class ApprovalNotFound(NotFound):
    """No approval with that id is pending in the conversation (decided already, or never asked)."""

    detail = "Approval not found"


class ApprovalExpired(DomainError):
    """The approval was not decided in time: the tool call will never run."""

    detail = "The approval has expired"


class HistoryCleared(DomainError):
    """The conversation's history was cleared while a reply to it was being generated:
    the reply belonged to the old history, so it was not kept."""

    detail = "The conversation's history was cleared while the reply was being generated"
