"""Conversations (the API's chat "sessions") and their messages."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal
from uuid import UUID

from parley.domain.errors import ValidationFailed
from parley.domain.paging import decode_position, encode_position

if TYPE_CHECKING:
    from parley.domain.approvals import PendingApproval

DEFAULT_CONVERSATION_NAME = "New chat"
MAX_CONVERSATION_NAME_LENGTH = 200
DEFAULT_MAX_MESSAGE_LENGTH = 32_000
_ALLOWED_CONTROL_CHARACTERS = frozenset("\t\r\n")
# What a text column cannot hold (NUL) or UTF-8 cannot encode (a lone UTF-16 surrogate).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
REPLACEMENT_CHARACTER = "\ufffd"
# Cleaning a suggested title (ConversationName.from_suggestion).
_LINE_BREAKS_AND_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_TITLE_LABEL = re.compile(r"^(?:title|name)\s*:\s*", re.IGNORECASE)
_TITLE_DECORATION = " \"'`*#_\u201c\u201d\u2018\u2019\u00ab\u00bb"  # and typographic quotes


class MessageRole(StrEnum):
    USER = "user"
    ASSISTANT = "assistant"


class MessageStatus(StrEnum):
    COMPLETE = "complete"
    INCOMPLETE = "incomplete"
    FAILED = "failed"


def _is_refused_control(char: str) -> bool:
    code = ord(char)
    is_control = code < 0x20 or 0x7F <= code < 0xA0
    return is_control and char not in _ALLOWED_CONTROL_CHARACTERS


def first_unstorable(text: str) -> str | None:
    """A character of ``text`` that a text column or UTF-8 cannot hold: NUL if there is one,
    else the first lone surrogate, else None.

    Runs on every string a request carries, so C-speed checks only (``in``, ``isascii``, an
    encode): for 32,000 characters, 0.3 us (ASCII) or 22 us, where a regular expression took 90 us.
    """
    if "\x00" in text:
        return "\x00"
    if text.isascii():
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        return text[error.start]
    return None


def storable_text(text: str) -> str:
    """Text from outside the service (a model's reply, a tool's result) made storable and
    sendable: NUL and lone surrogates become U+FFFD; everything else is kept as it is.

    Users' own input is refused instead (:class:`MessageContent`); a model's output cannot be
    refused, and one stray NUL made storing the reply fail.
    """
    return text if first_unstorable(text) is None else _UNSTORABLE.sub(REPLACEMENT_CHARACTER, text)


def storable_arguments(arguments: dict[str, Any]) -> dict[str, Any]:
    """A model's tool-call arguments made storable: NUL and lone surrogates in every string (keys
    and values, at any depth) become U+FFFD, as in a reply (:func:`storable_text`). A model's output
    cannot be refused: a lone surrogate made the agent's checkpoint fail to serialise, and a
    pending approval keeps the arguments in PostgreSQL (JSONB refuses NUL). Iterative: no
    nesting depth can exhaust the stack."""
    cleaned: dict[str, Any] = {}
    pending: list[tuple[Any, dict[str, Any] | list[Any]]] = [(arguments, cleaned)]
    while pending:
        source, target = pending.pop()
        items = source.items() if isinstance(source, dict) else enumerate(source)
        for key, value in items:
            if isinstance(value, dict | list):
                copy: dict[str, Any] | list[Any] = {} if isinstance(value, dict) else []
                pending.append((value, copy))
                value = copy
            elif isinstance(value, str):
                value = storable_text(value)
            if isinstance(target, dict):
                target[storable_text(str(key))] = value
            else:
                target.append(value)
    return cleaned


@dataclass(frozen=True, slots=True)
class ConversationName:
    """A conversation's display name: 1..200 characters after trimming."""

    value: str

    @classmethod
    def parse(cls, raw: str | None, *, field: str = "name") -> ConversationName:
        if raw is None:
            return cls(DEFAULT_CONVERSATION_NAME)
        trimmed = raw.strip()
        if not trimmed:
            raise ValidationFailed.single(field, "Name must not be empty")
        if len(trimmed) > MAX_CONVERSATION_NAME_LENGTH:
            raise ValidationFailed.single(
                field, f"Name must be at most {MAX_CONVERSATION_NAME_LENGTH} characters long"
            )
        if any(_is_refused_control(c) for c in trimmed):
            raise ValidationFailed.single(field, "Name must not contain control characters")
        return cls(trimmed)

    @classmethod
    def from_suggestion(cls, raw: str) -> ConversationName | None:
        """A name made from a suggested title (a model's answer), or None when nothing usable is left.

        A suggestion cannot be refused back to a user, so it is cleaned instead: control
        characters and line breaks become spaces, runs of spaces one, unstorable characters
        U+FFFD; a ``Title:`` label and surrounding quotes, asterisks, hashes and a final full stop
        go; a name longer than the limit is cut at the last space before it. The result obeys
        :meth:`parse`'s rules.
        """
        text = storable_text(_LINE_BREAKS_AND_CONTROLS.sub(" ", raw))
        text = _TITLE_LABEL.sub("", " ".join(text.split()))
        text = text.strip(_TITLE_DECORATION).rstrip(".").strip(_TITLE_DECORATION)
        if len(text) > MAX_CONVERSATION_NAME_LENGTH:
            cut = text[: MAX_CONVERSATION_NAME_LENGTH + 1]
            space = cut.rfind(" ")
            text = (cut[:space] if space > 0 else cut[:MAX_CONVERSATION_NAME_LENGTH]).rstrip()
        return cls(text) if text else None


def wants_title(name: str, message_count: int) -> bool:
    """Whether a turn should name its conversation: it still carries the default name and the
    turn's message opens its history (``message_count`` counts that message). So a conversation is
    titled after its first exchange only (again after its history is cleared), never once a user
    named it."""
    return name == DEFAULT_CONVERSATION_NAME and message_count == 1


@dataclass(frozen=True, slots=True)
class MessageContent:
    """What a user says: stored exactly as sent.

    Rules: 1..``max_length`` characters (not trimmed, not escaped); NUL and other
    control characters are refused, except tab, CR and LF.
    """

    value: str

    @classmethod
    def parse(
        cls, raw: str, *, max_length: int = DEFAULT_MAX_MESSAGE_LENGTH, field: str = "content"
    ) -> MessageContent:
        if not raw.strip():
            raise ValidationFailed.single(field, "Content must not be empty")
        if len(raw) > max_length:
            raise ValidationFailed.single(field, f"Content must be at most {max_length} characters long")
        if any(_is_refused_control(c) for c in raw):
            raise ValidationFailed.single(field, "Content must not contain control characters")
        return cls(raw)


@dataclass(slots=True, kw_only=True)
class Conversation:
    """A chat owned by one user. ``last_active_at`` orders the user's list."""

    id: UUID
    user_id: UUID
    name: str
    created_at: datetime
    updated_at: datetime
    last_active_at: datetime
    message_count: int = 0


@dataclass(slots=True, kw_only=True)
class Message:
    id: UUID
    conversation_id: UUID
    role: MessageRole
    content: str
    status: MessageStatus
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ReplyClaim:
    """A turn's hold on its conversation's reply slot: who holds it, and until when.

    ``expires_at`` is ``now + claim_ttl`` at the start: longer than the longest turn can run, so a
    live holder is never overtaken, and a holder that died (its process killed mid-turn) does not
    block the conversation for longer than that.
    """

    claim_id: UUID
    expires_at: datetime

    @classmethod
    def taken(cls, claim_id: UUID, *, now: datetime, ttl: timedelta) -> ReplyClaim:
        return cls(claim_id, expires_at=now + ttl)

    def is_live(self, now: datetime) -> bool:
        """Still holding the slot at ``now``: a claim expires at ``expires_at`` itself."""
        return now < self.expires_at


ReplyRefusal = Literal["busy", "not_found", "awaiting_approval"]
ResumeRefusal = Literal["not_found", "busy", "no_approval", "expired"]


@dataclass(frozen=True, slots=True)
class ReplySlot:
    """A conversation's single reply slot, and the rule for claiming it.

    - **ownership**: only the conversation's owner may start a reply in it; to anyone else
      the conversation does not exist (``"not_found"``), so its existence is not revealed;
    - **one reply at a time**: a reply starts only while no live claim holds the slot: it is
      free, or the claim holding it expired at or before ``now`` (its holder died and never
      freed it); otherwise ``"busy"``;
    - **a reply answers the history version it started from**: it is stored only while the
      history is still at that version; clearing the history starts a new version (the claim
      stays: its holder releases it after forgetting what the agent remembers of the old one);
    - **only the holder frees the slot**: finishing or releasing with a claim that no longer
      holds it (it expired and was taken over) leaves the new holder's claim alone;
    - **a paused turn keeps the slot**: a turn waiting for the user to approve a tool call holds
      the slot with its :class:`~parley.domain.approvals.PendingApproval` until the approval
      expires (a new message is then refused with ``"awaiting_approval"``); the decision resumes
      it under a new claim, only while that approval is still the pending one and still open;
      after it expired, a new message takes the slot over and the approval is dropped.

    The in-memory store applies these transitions; the PostgreSQL adapter's statements state
    the same conditions in SQL, and the persistence contract suite checks that both agree.
    """

    owner_id: UUID
    history_version: int = 0
    claim: ReplyClaim | None = None
    pending: PendingApproval | None = None

    def refusal(self, requester_id: UUID, now: datetime) -> ReplyRefusal | None:
        """Why ``requester_id`` may not start a reply at ``now``, or None when it may."""
        if requester_id != self.owner_id:
            return "not_found"
        if self.claim is not None and self.claim.is_live(now):
            return "awaiting_approval" if self.pending is not None else "busy"
        return None

    def started(self, claim: ReplyClaim) -> ReplySlot:
        """Held by ``claim`` (after :meth:`refusal` said None); an expired approval is dropped."""
        return replace(self, claim=claim, pending=None)

    def accepts_reply(self, history_version: int) -> bool:
        """Whether a reply that started from ``history_version`` may be stored."""
        return history_version == self.history_version

    def holds(self, claim_id: UUID) -> bool:
        return self.claim is not None and self.claim.claim_id == claim_id

    def released(self, claim_id: UUID) -> ReplySlot:
        """Free, if ``claim_id`` holds it; unchanged otherwise."""
        return replace(self, claim=None) if self.holds(claim_id) else self

    def paused(self, claim_id: UUID, approval: PendingApproval) -> ReplySlot:
        """Held until ``approval`` expires, by the same claim, if ``claim_id`` holds it (and the
        caller checked :meth:`accepts_reply`); unchanged otherwise."""
        if not self.holds(claim_id):
            return self
        return replace(self, claim=ReplyClaim(claim_id, approval.expires_at), pending=approval)

    def resume_refusal(self, requester_id: UUID, approval_id: UUID, now: datetime) -> ResumeRefusal | None:
        """Why ``requester_id`` may not decide approval ``approval_id`` at ``now``, or None."""
        if requester_id != self.owner_id:
            return "not_found"
        pending = self.pending
        if pending is None or pending.id != approval_id:
            live = self.claim is not None and self.claim.is_live(now)
            return "busy" if live and pending is None else "no_approval"
        if not pending.is_live(now):
            return "expired"
        return None

    def resumed(self, claim: ReplyClaim) -> ReplySlot:
        """Held by ``claim`` again, the approval decided (after :meth:`resume_refusal` said None)."""
        return replace(self, claim=claim, pending=None)

    def cleared(self) -> ReplySlot:
        """After the history was cleared: a new version; the claim of a running turn is kept (its
        holder frees it), a paused turn's is dropped with its approval (nothing runs to free it)."""
        cleared = replace(self, history_version=self.history_version + 1)
        return replace(cleared, claim=None, pending=None) if self.pending is not None else cleared


@dataclass(frozen=True, slots=True)
class ConversationCursor:
    """Keyset position in a user's conversation list (most recently active first).

    Encoded as an opaque URL-safe string so clients cannot depend on its shape.
    """

    last_active_at: datetime
    conversation_id: UUID

    def encode(self) -> str:
        return encode_position(self.last_active_at, self.conversation_id)

    @classmethod
    def decode(cls, token: str, *, field: str = "cursor") -> ConversationCursor:
        return cls(*decode_position(token, field=field))
