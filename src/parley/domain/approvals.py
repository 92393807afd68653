"""Human approval of tool calls: a paused turn, and what the user decides about it.

Some tools are marked as needing approval (configuration). When the agent calls one, the turn
pauses: its conversation's reply slot stays held by a :class:`PendingApproval` until the user
decides (:class:`Approve`, :class:`Reject` with a reason the model is told, or
:class:`EditArguments`) or until the approval expires, after which the conversation takes new
messages again and the tool call is never made.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from parley.domain.chat import first_unstorable
from parley.domain.errors import ValidationFailed

MAX_REJECTION_REASON_LENGTH = 2_000
MAX_EDITED_ARGUMENTS_CHARS = 32_000  # of their JSON text; the body limit bounds them first anyway


@dataclass(frozen=True, slots=True, kw_only=True)
class PendingApproval:
    """A tool call waiting for the user's decision.

    ``reply_so_far`` is the text the agent said before it asked (sent to the client already):
    the stored reply starts with it once the turn completes.
    """

    id: UUID
    tool: str
    arguments: dict[str, Any]
    requested_at: datetime
    expires_at: datetime
    reply_so_far: str = ""

    def is_live(self, now: datetime) -> bool:
        """Still open at ``now``: an approval expires at ``expires_at`` itself."""
        return now < self.expires_at


@dataclass(frozen=True, slots=True)
class Approve:
    """Run the tool call as the agent asked."""


@dataclass(frozen=True, slots=True)
class Reject:
    """Do not run the tool call; the model is told so, with ``reason`` (may be empty)."""

    reason: str = ""

    @classmethod
    def parse(cls, raw: str | None, *, field: str = "reason") -> Reject:
        """Rules: at most 2,000 characters; no NUL or lone surrogate (the model reads it, and a
        database column must hold it); other text is kept as written."""
        reason = raw or ""
        if len(reason) > MAX_REJECTION_REASON_LENGTH:
            raise ValidationFailed.single(
                field, f"Reason must be at most {MAX_REJECTION_REASON_LENGTH} characters long"
            )
        if first_unstorable(reason) is not None:
            raise ValidationFailed.single(field, "Reason must not contain NUL or unpaired surrogates")
        return cls(reason)


@dataclass(frozen=True, slots=True)
class EditArguments:
    """Run the tool call with ``arguments`` instead of the agent's."""

    arguments: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, raw: dict[str, Any], *, field: str = "arguments") -> EditArguments:
        """Rules: a JSON object of at most 32,000 characters whose strings (keys and values) hold no
        NUL or lone surrogate: the arguments are kept in PostgreSQL (JSONB refuses ``\\u0000``)."""
        try:
            text = json.dumps(raw, ensure_ascii=False)
        except (TypeError, ValueError, RecursionError):
            raise ValidationFailed.single(field, "Arguments must be a JSON object") from None
        if len(text) > MAX_EDITED_ARGUMENTS_CHARS:
            raise ValidationFailed.single(
                field, f"Arguments must be at most {MAX_EDITED_ARGUMENTS_CHARS} characters of JSON"
            )
        if _holds_unstorable_text(raw):
            raise ValidationFailed.single(field, "Arguments must not contain NUL or unpaired surrogates")
        return cls(json.loads(text))


def _holds_unstorable_text(value: object) -> bool:
    """Whether a string anywhere in ``value`` (a key or a value, at any depth) holds a NUL or a
    lone surrogate; iterative, so no nesting depth can exhaust the stack."""
    pending: list[object] = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if first_unstorable(item) is not None:
                return True
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


ApprovalDecision = Approve | Reject | EditArguments
