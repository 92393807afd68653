"""Persistence ports: repositories and the unit of work that owns a transaction, and the
conversations' reply slots, whose operations are atomic by themselves.

Contracts shared by every adapter:
- repositories never commit; :meth:`UnitOfWork.commit` does, and leaving the
  ``async with`` block without committing rolls everything back;
- each :class:`ReplySlots` call is one atomic step that takes effect when it returns
  (no unit of work around it);
- entities come back fully loaded (no lazy loading after the transaction);
- driver failures surface as :class:`StorageUnavailable` (connection lost, server
  down; :class:`StorageBusy` when no pooled connection came free in time) so the edge
  can answer 503; unique e-mail violations surface as
  :class:`parley.domain.errors.EmailAlreadyRegistered`, at the latest on commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Literal, Protocol, Self
from uuid import UUID

from parley.domain.approvals import PendingApproval
from parley.domain.auth import AuthSession
from parley.domain.chat import (
    Conversation,
    ConversationCursor,
    Message,
    ReplyClaim,
    ReplyRefusal,
    ResumeRefusal,
)
from parley.domain.users import Email, User


class StorageUnavailable(Exception):
    """The database cannot be reached or refused the connection."""


class StorageBusy(StorageUnavailable):
    """Every database connection stayed in use for as long as a request may wait for one: the
    service is overloaded (not down), so the caller should come back a little later."""


class UserRepository(Protocol):
    async def add(self, user: User) -> None: ...

    async def get(self, user_id: UUID) -> User | None: ...

    async def get_by_email(self, email: Email) -> User | None: ...

    async def update(self, user: User) -> None:
        """Persist ``email``, ``password_hash`` and ``updated_at``."""
        ...

    async def delete(self, user_id: UUID) -> None:
        """Delete the user and, by cascade, their auth sessions, conversations and messages."""
        ...


class AuthSessionRepository(Protocol):
    async def add(self, auth_session: AuthSession) -> None: ...

    async def get(self, session_id: UUID, *, for_update: bool = False) -> AuthSession | None:
        """``for_update`` locks the row until the transaction ends (serialises refresh rotation)."""
        ...

    async def update(self, auth_session: AuthSession) -> None:
        """Persist ``refresh_token_id`` and ``revoked_at``."""
        ...

    async def revoke_all_for_user(
        self, user_id: UUID, now: datetime, *, except_session_id: UUID | None = None
    ) -> int:
        """Revoke every active session of the user but one; return how many were revoked."""
        ...


@dataclass(frozen=True, slots=True)
class ConversationPage:
    items: list[Conversation]
    next_cursor: ConversationCursor | None


@dataclass(frozen=True, slots=True)
class MessagePage:
    """``items`` oldest first; ``has_older`` tells whether a page before exists."""

    items: list[Message]
    has_older: bool


@dataclass(frozen=True, slots=True)
class ReplyStart:
    """What :meth:`ReplySlots.start_reply` did: took the slot (``"started"``), found it
    held (``"busy"``; ``"awaiting_approval"`` when a paused turn holds it), or found no
    conversation of that owner (``"not_found"``).

    ``history_version`` is the version of the conversation's history the reply will answer
    (meaningful when started): the reply is only stored into that version. ``awaits_title``: the
    conversation still carries the default name and the message opens its history
    (:func:`parley.domain.chat.wants_title`), so the turn may name it.
    """

    outcome: Literal["started"] | ReplyRefusal
    history_version: int = 0
    awaits_title: bool = False


@dataclass(frozen=True, slots=True)
class ReplyResume:
    """What :meth:`ReplySlots.resume_reply` did: took the paused turn's slot over
    (``"resumed"``, with the history version its reply answers and the approval it decided), or
    why not (:data:`parley.domain.chat.ResumeRefusal`)."""

    outcome: Literal["resumed"] | ResumeRefusal
    history_version: int = 0
    approval: PendingApproval | None = None


ReplyFinish = Literal["stored", "discarded", "gone"]
"""What :meth:`ReplySlots.finish_reply` did: stored the reply, refused it because the
history was cleared since the turn started (the slot stays claimed), or found no conversation."""


@dataclass(frozen=True, slots=True)
class TitledFinish:
    """What :meth:`ReplySlots.finish_titled_reply` did: ``outcome`` as for
    :meth:`ReplySlots.finish_reply`; ``renamed`` is the conversation as it is now when the reply
    was stored and the conversation is named by the title (None otherwise)."""

    outcome: ReplyFinish
    renamed: Conversation | None = None


class ConversationRepository(Protocol):
    async def add(self, conversation: Conversation) -> None: ...

    async def get(self, conversation_id: UUID, *, owner_id: UUID) -> Conversation | None:
        """Return the conversation only if ``owner_id`` owns it."""
        ...

    async def list_for_owner(
        self, owner_id: UUID, *, limit: int, after: ConversationCursor | None
    ) -> ConversationPage:
        """Most recently active first, ties broken by id (descending)."""
        ...

    async def rename(self, conversation_id: UUID, name: str, now: datetime) -> None: ...

    async def rename_if_named(
        self, conversation_id: UUID, *, expected: str, name: str, now: datetime
    ) -> bool:
        """Rename the conversation to ``name`` (``updated_at`` to ``now``) only while its name is
        still ``expected``, as one conditional write; True when it applied. A name chosen by its
        user meanwhile wins; an unknown conversation is False."""
        ...

    async def delete(self, conversation_id: UUID) -> None:
        """Delete the conversation and, by cascade, its messages."""
        ...

    async def ids_for_owner(self, owner_id: UUID) -> list[UUID]: ...

    async def clear_history(self, conversation_id: UUID, now: datetime) -> None:
        """Delete every message of the conversation, set ``message_count`` to zero and
        ``updated_at`` to ``now``, and start a new history version: a reply being generated for
        the old history will not be stored (see :meth:`ReplySlots.finish_reply`); a claim on
        the reply slot is kept.

        Serialised with :meth:`ReplySlots.start_reply` and :meth:`ReplySlots.finish_reply` on
        the conversation: a user message stored concurrently either was stored first (and is
        deleted) or lands in the new history, never in between.
        """
        ...


class ReplySlots(Protocol):
    """Each conversation's single reply slot (the rule: :class:`parley.domain.chat.ReplySlot`).

    Every call is one atomic step that takes effect when it returns: it needs no unit of work
    (there is nothing to commit or roll back), and other callers see its effect at once.
    Driver failures surface as :class:`StorageUnavailable`, as in a unit of work.
    """

    async def start_reply(
        self,
        conversation_id: UUID,
        *,
        owner_id: UUID,
        claim: ReplyClaim,
        now: datetime,
        user_message: Message,
    ) -> ReplyStart:
        """Take the conversation's single reply slot and store the user message that asks for the reply.

        In one atomic step, when ``owner_id`` owns the conversation and the slot is free
        or its previous claim expired at or before ``now`` (its holder died): hold the
        slot with ``claim`` (until ``claim.expires_at``), store ``user_message``, add one to
        ``message_count`` and move ``last_active_at``/``updated_at`` to ``now``; the outcome
        is ``"started"``, with the current history version. Otherwise nothing changes (the
        message is not stored) and the outcome is ``"busy"`` (another live claim holds the
        slot) or ``"not_found"`` (no such conversation, or another user's). Of concurrent
        callers, exactly one starts. ``user_message`` must belong to ``conversation_id``
        (ValueError otherwise).
        """
        ...

    async def finish_reply(
        self, conversation_id: UUID, *, claim_id: UUID, history_version: int, now: datetime, reply: Message
    ) -> ReplyFinish:
        """Store the reply and free the slot, if the history is still the version the turn answers.

        In one atomic step, when the conversation exists and its history is still at
        ``history_version``: store ``reply``, add one to ``message_count`` (computed by the
        database: concurrent writers never lose an increment), move ``last_active_at``/
        ``updated_at`` to ``now``, and free the slot only if ``claim_id`` still holds it (an
        expired claim may have been taken over since): ``"stored"``. When the history was
        cleared since (a newer version), nothing changes, not even the slot: ``"discarded"``
        (the caller forgets what the agent remembers of the turn, then calls
        :meth:`release_reply`). When the conversation was deleted: ``"gone"``. ``reply`` must
        belong to ``conversation_id`` (ValueError otherwise).
        """
        ...

    async def finish_titled_reply(
        self,
        conversation_id: UUID,
        *,
        claim_id: UUID,
        history_version: int,
        now: datetime,
        reply: Message,
        title: str,
    ) -> TitledFinish:
        """:meth:`finish_reply`, and in the same atomic step, when the reply is stored and the
        conversation still carries the default name, rename it to ``title`` (a valid name). The
        first turn of a conversation uses it when its title is ready by then, so the title and the
        reply are stored together and the caller can tell its client at once."""
        ...

    async def release_reply(self, conversation_id: UUID, *, claim_id: UUID) -> None:
        """Free the slot if ``claim_id`` still holds it; store nothing. Idempotent."""
        ...

    async def pause_reply(
        self, conversation_id: UUID, *, claim_id: UUID, history_version: int, approval: PendingApproval
    ) -> ReplyFinish:
        """Keep the slot for a turn that waits for ``approval`` (:meth:`ReplySlot.paused`).

        In one atomic step, when the conversation exists and its history is still at
        ``history_version``: if ``claim_id`` holds the slot, it now holds it until
        ``approval.expires_at``, with ``approval`` pending: ``"stored"``. Otherwise as for
        :meth:`finish_reply` (``"discarded"``: the caller forgets and releases; ``"gone"``).
        Nothing is added to the history.
        """
        ...

    async def resume_reply(
        self, conversation_id: UUID, *, owner_id: UUID, approval_id: UUID, claim: ReplyClaim, now: datetime
    ) -> ReplyResume:
        """Take the slot of the paused turn waiting for ``approval_id``, to resume it.

        In one atomic step, when :meth:`ReplySlot.resume_refusal` says nothing against it:
        ``claim`` holds the slot (until ``claim.expires_at``), no approval is pending any more,
        ``last_active_at``/``updated_at`` move to ``now``: ``"resumed"``, with the decided approval.
        Otherwise nothing changes and the outcome says why. Of concurrent callers, exactly one resumes.
        """
        ...

    async def pending_approval(
        self, conversation_id: UUID, *, owner_id: UUID, now: datetime
    ) -> PendingApproval | None:
        """The approval the conversation's paused turn waits for, if ``owner_id`` owns the
        conversation and the approval is still open at ``now``; None otherwise."""
        ...


class MessageRepository(Protocol):
    """Messages are stored by :class:`ReplySlots` (with the turn that asks or answers)."""

    async def page(self, conversation_id: UUID, *, limit: int, before: UUID | None) -> MessagePage:
        """The newest ``limit`` messages older than message ``before`` (all when None).

        Order is insertion order; an unknown ``before`` yields an empty page.
        """
        ...


class UnitOfWork(Protocol):
    """One business transaction. Use as ``async with uow_factory() as uow: ...; await uow.commit()``.

    - nothing written is visible to others before :meth:`commit`;
    - :meth:`rollback`, or leaving the block without committing (an exception included),
      undoes every write since the last commit; work after either runs in a new transaction;
    - how cheaply a unit of work that only reads runs is the adapter's business, not a mode
      the caller chooses.
    """

    users: UserRepository
    auth_sessions: AuthSessionRepository
    conversations: ConversationRepository
    messages: MessageRepository

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def commit(self) -> None: ...

    async def rollback(self) -> None: ...


class UnitOfWorkFactory(Protocol):
    def __call__(self) -> UnitOfWork:
        """A fresh, not yet entered unit of work."""
        ...


class DatabaseProbe(Protocol):
    async def ping(self) -> None:
        """Return when the database answers a trivial query; raise :class:`StorageUnavailable`
        otherwise, within a bounded time, whatever the rest of the app is doing."""
        ...
