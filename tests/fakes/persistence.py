"""In-memory persistence: an ``InMemoryUnitOfWork`` and ``InMemoryReplySlots`` honouring the same
contracts as Postgres.

Usage::

    db = InMemoryDatabase()
    uow_factory = db.unit_of_work          # a UnitOfWorkFactory
    async with uow_factory() as uow:
        await uow.users.add(user)
        await uow.commit()
    assert db.users[user.id].email == user.email   # inspect committed state

How it models a transaction:
- entering a unit of work snapshots the committed state; reads and writes go to that
  private copy, so nothing is visible to other units of work before ``commit``;
- every write is also journalled as a function of the state; ``commit`` replays the
  journal on a copy of the *current* committed state and swaps it in atomically, so
  interleaved units of work compose (increments add up, a unique e-mail registered
  meanwhile raises :class:`EmailAlreadyRegistered` on commit and nothing is applied);
- leaving the block without ``commit`` (or calling ``rollback``) drops the journal;
- the reply slots (``db.reply_slots``) need no unit of work: each call is applied to the
  committed state at once, all or nothing, following the domain's claim rule
  (:class:`parley.domain.chat.ReplySlot`);
- Entities go in and come out as copies: mutating a returned entity changes nothing
  until the matching ``update`` is called, as with a real database.

Set ``db.fail_with_unavailable = True`` to make every entry, query and commit raise
:class:`StorageUnavailable` (the database is down).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Self, TypeVar
from uuid import UUID

from parley.domain.approvals import PendingApproval
from parley.domain.auth import AuthSession
from parley.domain.chat import (
    DEFAULT_CONVERSATION_NAME,
    Conversation,
    ConversationCursor,
    Message,
    ReplyClaim,
    ReplySlot,
    wants_title,
)
from parley.domain.errors import EmailAlreadyRegistered
from parley.domain.users import Email, User
from parley.ports.persistence import (
    AuthSessionRepository,
    ConversationPage,
    ConversationRepository,
    MessagePage,
    MessageRepository,
    ReplyFinish,
    ReplyResume,
    ReplyStart,
    StorageUnavailable,
    TitledFinish,
    UserRepository,
)

_T = TypeVar("_T")


@dataclass(slots=True)
class _ConversationRow:
    conversation: Conversation
    slot: ReplySlot


@dataclass(slots=True)
class _MessageRow:
    message: Message
    seq: int


@dataclass(slots=True)
class _State:
    """Everything a database holds; deep-copied per unit of work."""

    users: dict[UUID, User] = field(default_factory=dict)
    auth_sessions: dict[UUID, AuthSession] = field(default_factory=dict)
    conversations: dict[UUID, _ConversationRow] = field(default_factory=dict)
    messages: dict[UUID, _MessageRow] = field(default_factory=dict)
    next_seq: int = 1


_Write = Callable[[_State], object]
_CurrentTransaction = Callable[[], "_Transaction"]


def _clone(entity: _T) -> _T:
    return copy.copy(entity)


class InMemoryDatabase:
    """The shared committed state behind every :class:`InMemoryUnitOfWork` it creates."""

    def __init__(self) -> None:
        self._state = _State()
        self.fail_with_unavailable = False
        self.reply_slots = InMemoryReplySlots(self)

    def unit_of_work(self) -> InMemoryUnitOfWork:
        """The ``UnitOfWorkFactory``: a fresh unit of work per call."""
        return InMemoryUnitOfWork(self)

    # -- inspection of committed state (copies; mutating them changes nothing) --

    @property
    def users(self) -> dict[UUID, User]:
        return {key: _clone(user) for key, user in self._state.users.items()}

    @property
    def auth_sessions(self) -> dict[UUID, AuthSession]:
        return {key: _clone(item) for key, item in self._state.auth_sessions.items()}

    @property
    def conversations(self) -> dict[UUID, Conversation]:
        return {key: _clone(row.conversation) for key, row in self._state.conversations.items()}

    @property
    def messages(self) -> list[Message]:
        """All messages of all conversations, in insertion order."""
        rows = sorted(self._state.messages.values(), key=lambda row: row.seq)
        return [_clone(row.message) for row in rows]

    def reply_claim(self, conversation_id: UUID) -> UUID | None:
        """The claim id currently holding the conversation's reply slot (expired or not)."""
        row = self._state.conversations.get(conversation_id)
        claim = None if row is None else row.slot.claim
        return None if claim is None else claim.claim_id

    # -- used by InMemoryUnitOfWork --

    def check_available(self) -> None:
        if self.fail_with_unavailable:
            raise StorageUnavailable("in-memory database marked unavailable")

    def snapshot(self) -> _State:
        return copy.deepcopy(self._state)

    def apply(self, journal: list[_Write]) -> None:
        """Replay ``journal`` on the committed state: all of it or (on error) none of it."""
        candidate = copy.deepcopy(self._state)
        for write in journal:
            write(candidate)
        self._state = candidate

    def apply_now(self, operation: Callable[[_State], _T]) -> _T:
        """Run one write on the committed state at once (all or nothing) and return its result."""
        self.check_available()
        candidate = copy.deepcopy(self._state)
        result = operation(candidate)
        self._state = candidate
        return result


class _Transaction:
    """A unit of work's private state plus the journal of its writes."""

    def __init__(self, database: InMemoryDatabase) -> None:
        self._database = database
        self.state = database.snapshot()
        self.journal: list[_Write] = []

    def read(self) -> _State:
        self._database.check_available()
        return self.state

    def write(self, operation: Callable[[_State], _T]) -> _T:
        """Apply ``operation`` now (read-your-writes) and again on commit."""
        self._database.check_available()
        result = operation(self.state)
        self.journal.append(operation)
        return result


# ---------------------------------------------------------------- users


def _ensure_email_free(state: _State, email: Email, *, except_id: UUID | None = None) -> None:
    if any(u.email == email and u.id != except_id for u in state.users.values()):
        raise EmailAlreadyRegistered()


class InMemoryUserRepository:
    def __init__(self, current: _CurrentTransaction) -> None:
        self._current = current

    @property
    def _tx(self) -> _Transaction:
        return self._current()

    async def add(self, user: User) -> None:
        stored = _clone(user)

        def insert(state: _State) -> None:
            _ensure_email_free(state, stored.email)
            state.users[stored.id] = _clone(stored)

        self._tx.write(insert)

    async def get(self, user_id: UUID) -> User | None:
        user = self._tx.read().users.get(user_id)
        return None if user is None else _clone(user)

    async def get_by_email(self, email: Email) -> User | None:
        found = (u for u in self._tx.read().users.values() if u.email == email)
        user = next(found, None)
        return None if user is None else _clone(user)

    async def update(self, user: User) -> None:
        user_id, email, password_hash, updated_at = user.id, user.email, user.password_hash, user.updated_at

        def change(state: _State) -> None:
            stored = state.users.get(user_id)
            if stored is None:
                return
            _ensure_email_free(state, email, except_id=user_id)
            stored.email, stored.password_hash, stored.updated_at = email, password_hash, updated_at

        self._tx.write(change)

    async def delete(self, user_id: UUID) -> None:
        def remove(state: _State) -> None:
            state.users.pop(user_id, None)
            for session_id in [s.id for s in state.auth_sessions.values() if s.user_id == user_id]:
                del state.auth_sessions[session_id]
            owned = [row.conversation.id for row in state.conversations.values()]
            for conversation_id in owned:
                if state.conversations[conversation_id].conversation.user_id == user_id:
                    _delete_conversation(state, conversation_id)

        self._tx.write(remove)


# ---------------------------------------------------------------- auth sessions


class InMemoryAuthSessionRepository:
    def __init__(self, current: _CurrentTransaction) -> None:
        self._current = current

    @property
    def _tx(self) -> _Transaction:
        return self._current()

    async def add(self, auth_session: AuthSession) -> None:
        stored = _clone(auth_session)

        def insert(state: _State) -> None:
            if stored.user_id not in state.users:
                raise LookupError(f"user {stored.user_id} does not exist (foreign key)")
            state.auth_sessions[stored.id] = _clone(stored)

        self._tx.write(insert)

    async def get(self, session_id: UUID, *, for_update: bool = False) -> AuthSession | None:
        # ``for_update`` cannot block here: a single event loop never interleaves
        # inside one synchronous replay, which is the serialisation it asks for.
        found = self._tx.read().auth_sessions.get(session_id)
        return None if found is None else _clone(found)

    async def update(self, auth_session: AuthSession) -> None:
        session_id, token_id, revoked_at = (
            auth_session.id,
            auth_session.refresh_token_id,
            auth_session.revoked_at,
        )

        def change(state: _State) -> None:
            stored = state.auth_sessions.get(session_id)
            if stored is not None:
                stored.refresh_token_id, stored.revoked_at = token_id, revoked_at

        self._tx.write(change)

    async def revoke_all_for_user(
        self, user_id: UUID, now: datetime, *, except_session_id: UUID | None = None
    ) -> int:
        def revoke(state: _State) -> int:
            targets = [
                s
                for s in state.auth_sessions.values()
                if s.user_id == user_id and s.id != except_session_id and s.is_active(now)
            ]
            for auth_session in targets:
                auth_session.revoked_at = now
            return len(targets)

        return self._tx.write(revoke)


# ---------------------------------------------------------------- conversations


def _delete_conversation(state: _State, conversation_id: UUID) -> None:
    state.conversations.pop(conversation_id, None)
    _delete_messages(state, conversation_id)


def _delete_messages(state: _State, conversation_id: UUID) -> None:
    doomed = [key for key, row in state.messages.items() if row.message.conversation_id == conversation_id]
    for key in doomed:
        del state.messages[key]


def _recency_key(conversation: Conversation) -> tuple[datetime, UUID]:
    return (conversation.last_active_at, conversation.id)


def _count_message(conversation: Conversation, now: datetime) -> None:
    conversation.message_count += 1
    conversation.last_active_at = conversation.updated_at = now


def _check_belongs(message: Message, conversation_id: UUID) -> None:
    if message.conversation_id != conversation_id:
        raise ValueError(f"message {message.id} belongs to another conversation")


class InMemoryConversationRepository:
    def __init__(self, current: _CurrentTransaction) -> None:
        self._current = current

    @property
    def _tx(self) -> _Transaction:
        return self._current()

    async def add(self, conversation: Conversation) -> None:
        stored = _clone(conversation)

        def insert(state: _State) -> None:
            if stored.user_id not in state.users:
                raise LookupError(f"user {stored.user_id} does not exist (foreign key)")
            state.conversations[stored.id] = _ConversationRow(_clone(stored), ReplySlot(stored.user_id))

        self._tx.write(insert)

    async def get(self, conversation_id: UUID, *, owner_id: UUID) -> Conversation | None:
        row = self._tx.read().conversations.get(conversation_id)
        if row is None or row.conversation.user_id != owner_id:
            return None
        return _clone(row.conversation)

    async def list_for_owner(
        self, owner_id: UUID, *, limit: int, after: ConversationCursor | None
    ) -> ConversationPage:
        owned = self._owned_newest_first(owner_id)
        if after is not None:
            position = (after.last_active_at, after.conversation_id)
            owned = [c for c in owned if _recency_key(c) < position]
        page = owned[:limit]
        has_more = len(owned) > limit and bool(page)
        next_cursor = ConversationCursor(page[-1].last_active_at, page[-1].id) if has_more else None
        return ConversationPage(items=[_clone(c) for c in page], next_cursor=next_cursor)

    async def rename(self, conversation_id: UUID, name: str, now: datetime) -> None:
        def change(state: _State) -> None:
            row = state.conversations.get(conversation_id)
            if row is not None:
                row.conversation.name, row.conversation.updated_at = name, now

        self._tx.write(change)

    async def rename_if_named(
        self, conversation_id: UUID, *, expected: str, name: str, now: datetime
    ) -> bool:
        def change(state: _State) -> bool:
            row = state.conversations.get(conversation_id)
            if row is None or row.conversation.name != expected:
                return False
            row.conversation.name, row.conversation.updated_at = name, now
            return True

        return self._tx.write(change)

    async def delete(self, conversation_id: UUID) -> None:
        self._tx.write(lambda state: _delete_conversation(state, conversation_id))

    async def ids_for_owner(self, owner_id: UUID) -> list[UUID]:
        return [c.id for c in self._owned_newest_first(owner_id)]

    async def clear_history(self, conversation_id: UUID, now: datetime) -> None:
        def clear(state: _State) -> None:
            row = state.conversations.get(conversation_id)
            if row is not None:
                row.conversation.message_count, row.conversation.updated_at = 0, now
                row.slot = row.slot.cleared()
            _delete_messages(state, conversation_id)

        self._tx.write(clear)

    def _owned_newest_first(self, owner_id: UUID) -> list[Conversation]:
        rows = self._tx.read().conversations.values()
        owned = [row.conversation for row in rows if row.conversation.user_id == owner_id]
        return sorted(owned, key=_recency_key, reverse=True)


# ---------------------------------------------------------------- messages


def _insert_message(state: _State, message: Message) -> None:
    if message.conversation_id not in state.conversations:
        raise LookupError(f"conversation {message.conversation_id} does not exist (foreign key)")
    state.messages[message.id] = _MessageRow(_clone(message), state.next_seq)
    state.next_seq += 1


class InMemoryMessageRepository:
    def __init__(self, current: _CurrentTransaction) -> None:
        self._current = current

    @property
    def _tx(self) -> _Transaction:
        return self._current()

    async def page(self, conversation_id: UUID, *, limit: int, before: UUID | None) -> MessagePage:
        rows = self._tx.read().messages
        history = sorted(
            (row for row in rows.values() if row.message.conversation_id == conversation_id),
            key=lambda row: row.seq,
        )
        if before is not None:
            anchor = rows.get(before)
            if anchor is None or anchor.message.conversation_id != conversation_id:
                return MessagePage(items=[], has_older=False)
            history = [row for row in history if row.seq < anchor.seq]
        newest = history[-limit:] if limit > 0 else []
        return MessagePage(
            items=[_clone(row.message) for row in newest], has_older=len(history) > len(newest)
        )


# ---------------------------------------------------------------- reply slots


class InMemoryReplySlots:
    """A :class:`parley.ports.persistence.ReplySlots` over an :class:`InMemoryDatabase`: each call
    is applied to the committed state at once, as one autocommit statement is on PostgreSQL."""

    def __init__(self, database: InMemoryDatabase) -> None:
        self._database = database

    async def start_reply(
        self,
        conversation_id: UUID,
        *,
        owner_id: UUID,
        claim: ReplyClaim,
        now: datetime,
        user_message: Message,
    ) -> ReplyStart:
        _check_belongs(user_message, conversation_id)
        stored = _clone(user_message)

        def start(state: _State) -> ReplyStart:
            row = state.conversations.get(conversation_id)
            if row is None:
                return ReplyStart("not_found")
            refusal = row.slot.refusal(owner_id, now)
            if refusal is not None:
                return ReplyStart(refusal)
            row.slot = row.slot.started(claim)
            _count_message(row.conversation, now)
            _insert_message(state, stored)
            awaits_title = wants_title(row.conversation.name, row.conversation.message_count)
            return ReplyStart("started", history_version=row.slot.history_version, awaits_title=awaits_title)

        return self._database.apply_now(start)

    async def finish_reply(
        self, conversation_id: UUID, *, claim_id: UUID, history_version: int, now: datetime, reply: Message
    ) -> ReplyFinish:
        _check_belongs(reply, conversation_id)
        stored = _clone(reply)

        def finish(state: _State) -> ReplyFinish:
            outcome, _ = _store_reply(
                state, stored, claim_id=claim_id, history_version=history_version, now=now
            )
            return outcome

        return self._database.apply_now(finish)

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
        _check_belongs(reply, conversation_id)
        stored = _clone(reply)

        def finish(state: _State) -> TitledFinish:
            outcome, row = _store_reply(
                state, stored, claim_id=claim_id, history_version=history_version, now=now
            )
            if row is None:
                return TitledFinish(outcome)
            if row.conversation.name == DEFAULT_CONVERSATION_NAME:
                row.conversation.name = title
            named = row.conversation.name == title
            return TitledFinish("stored", _clone(row.conversation) if named else None)

        return self._database.apply_now(finish)

    async def release_reply(self, conversation_id: UUID, *, claim_id: UUID) -> None:
        def release(state: _State) -> None:
            row = state.conversations.get(conversation_id)
            if row is not None:
                row.slot = row.slot.released(claim_id)

        self._database.apply_now(release)

    async def pause_reply(
        self, conversation_id: UUID, *, claim_id: UUID, history_version: int, approval: PendingApproval
    ) -> ReplyFinish:
        kept = copy.deepcopy(approval)

        def pause(state: _State) -> ReplyFinish:
            row = _answering_row(state, conversation_id, history_version)
            if not isinstance(row, _ConversationRow):
                return row
            row.slot = row.slot.paused(claim_id, kept)
            return "stored"

        return self._database.apply_now(pause)

    async def resume_reply(
        self, conversation_id: UUID, *, owner_id: UUID, approval_id: UUID, claim: ReplyClaim, now: datetime
    ) -> ReplyResume:
        def resume(state: _State) -> ReplyResume:
            row = state.conversations.get(conversation_id)
            if row is None:
                return ReplyResume("not_found")
            refusal = row.slot.resume_refusal(owner_id, approval_id, now)
            if refusal is not None:
                return ReplyResume(refusal)
            approval = row.slot.pending
            row.slot = row.slot.resumed(claim)
            row.conversation.last_active_at = row.conversation.updated_at = now
            return ReplyResume("resumed", row.slot.history_version, copy.deepcopy(approval))

        return self._database.apply_now(resume)

    async def pending_approval(
        self, conversation_id: UUID, *, owner_id: UUID, now: datetime
    ) -> PendingApproval | None:
        def read(state: _State) -> PendingApproval | None:
            row = state.conversations.get(conversation_id)
            if row is None or row.slot.owner_id != owner_id:
                return None
            pending = row.slot.pending
            return copy.deepcopy(pending) if pending is not None and pending.is_live(now) else None

        return self._database.apply_now(read)


def _answering_row(
    state: _State, conversation_id: UUID, history_version: int
) -> _ConversationRow | ReplyFinish:
    """The conversation's row if its history is still at ``history_version``
    (``ReplySlot.accepts_reply``); else ``"gone"`` (no such conversation) or ``"discarded"``."""
    row = state.conversations.get(conversation_id)
    if row is None:
        return "gone"
    return row if row.slot.accepts_reply(history_version) else "discarded"


def _store_reply(
    state: _State, reply: Message, *, claim_id: UUID, history_version: int, now: datetime
) -> tuple[ReplyFinish, _ConversationRow | None]:
    """``finish_reply``'s one step (the rule: ``ReplySlot.accepts_reply``); the row when stored."""
    row = _answering_row(state, reply.conversation_id, history_version)
    if not isinstance(row, _ConversationRow):
        return row, None
    _insert_message(state, reply)
    _count_message(row.conversation, now)
    row.slot = row.slot.released(claim_id)
    return "stored", row


# ---------------------------------------------------------------- unit of work


class InMemoryUnitOfWork:
    """A :class:`parley.ports.persistence.UnitOfWork` over an :class:`InMemoryDatabase`."""

    # Typed as the ports: the Protocol's attributes are mutable, hence invariant.
    users: UserRepository
    auth_sessions: AuthSessionRepository
    conversations: ConversationRepository
    messages: MessageRepository

    def __init__(self, database: InMemoryDatabase) -> None:
        self._database = database
        self._tx: _Transaction | None = None
        self.users = InMemoryUserRepository(self._active)
        self.auth_sessions = InMemoryAuthSessionRepository(self._active)
        self.conversations = InMemoryConversationRepository(self._active)
        self.messages = InMemoryMessageRepository(self._active)

    async def __aenter__(self) -> Self:
        self._database.check_available()
        self._begin()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._tx = None  # whatever was not committed is gone

    async def commit(self) -> None:
        self._database.check_available()
        self._database.apply(self._active().journal)
        self._begin()  # later work runs in a new transaction, as with SQLAlchemy

    async def rollback(self) -> None:
        self._active()
        self._begin()

    def _begin(self) -> None:
        self._tx = _Transaction(self._database)

    def _active(self) -> _Transaction:
        if self._tx is None:
            raise RuntimeError("use the unit of work inside 'async with'")
        return self._tx
