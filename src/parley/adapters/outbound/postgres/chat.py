"""Repositories for conversations and their messages."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import (
    BindParameter,
    Select,
    bindparam,
    case,
    delete,
    func,
    insert,
    literal_column,
    or_,
    select,
    tuple_,
    update,
)

from parley.domain.chat import Conversation, ConversationCursor, Message
from parley.ports.persistence import ConversationPage, MessagePage, ReplyFinish, ReplyStart

from .mappers import conversation_from_row, conversation_to_row, message_from_row, message_to_row
from .statements import StatementRunner
from .tables import conversations, messages

# The entity's columns: the claim and the history version are the reply slot's bookkeeping.
_conversation_columns = [
    c for c in conversations.c if not c.name.startswith("reply_claim") and c.name != "history_version"
]
_message_columns = [c for c in messages.c if c.name != "seq"]


class PostgresConversationRepository:
    """:class:`parley.ports.persistence.ConversationRepository` on ``conversations``."""

    def __init__(self, runner: StatementRunner) -> None:
        self._runner = runner

    async def add(self, conversation: Conversation) -> None:
        await self._runner.execute(insert(conversations).values(conversation_to_row(conversation)))

    async def get(self, conversation_id: UUID, *, owner_id: UUID) -> Conversation | None:
        statement = select(*_conversation_columns).where(
            conversations.c.id == conversation_id, conversations.c.user_id == owner_id
        )
        row = (await self._runner.execute(statement)).mappings().one_or_none()
        return None if row is None else conversation_from_row(row)

    async def list_for_owner(
        self, owner_id: UUID, *, limit: int, after: ConversationCursor | None
    ) -> ConversationPage:
        """Keyset page: rows strictly after ``after`` in (last_active_at, id) descending order."""
        statement = (
            select(*_conversation_columns)
            .where(conversations.c.user_id == owner_id)
            .order_by(conversations.c.last_active_at.desc(), conversations.c.id.desc())
            .limit(limit + 1)  # one extra row tells whether a next page exists
        )
        if after is not None:
            position = tuple_(conversations.c.last_active_at, conversations.c.id)
            statement = statement.where(position < tuple_(after.last_active_at, after.conversation_id))
        rows = (await self._runner.execute(statement)).mappings().all()
        page = [conversation_from_row(row) for row in rows[:limit]]
        has_more = len(rows) > limit and bool(page)
        next_cursor = ConversationCursor(page[-1].last_active_at, page[-1].id) if has_more else None
        return ConversationPage(items=page, next_cursor=next_cursor)

    async def rename(self, conversation_id: UUID, name: str, now: datetime) -> None:
        await self._update(conversation_id, name=name, updated_at=now)

    async def delete(self, conversation_id: UUID) -> None:
        # Messages go with it: ON DELETE CASCADE.
        await self._runner.execute(delete(conversations).where(conversations.c.id == conversation_id))

    async def ids_for_owner(self, owner_id: UUID) -> list[UUID]:
        statement = (
            select(conversations.c.id)
            .where(conversations.c.user_id == owner_id)
            .order_by(conversations.c.last_active_at.desc(), conversations.c.id.desc())
        )
        return list((await self._runner.execute(statement)).scalars().all())

    async def clear_history(self, conversation_id: UUID, now: datetime) -> None:
        """The conversation's row first: its lock makes a concurrent start or finish of a reply
        wait, or be waited for; then the DELETE (a new snapshot under READ COMMITTED) sees every
        message stored before the lock was granted."""
        await self._update(
            conversation_id,
            message_count=0,
            updated_at=now,
            history_version=conversations.c.history_version + 1,
        )
        await self._runner.execute(delete(messages).where(messages.c.conversation_id == conversation_id))

    async def start_reply(
        self,
        conversation_id: UUID,
        *,
        owner_id: UUID,
        claim_id: UUID,
        now: datetime,
        until: datetime,
        user_message: Message,
    ) -> ReplyStart:
        """One statement claims, counts and stores the message; only a refusal costs a second one.

        The INSERT reads the claimed row's id, so it stores nothing unless the UPDATE claimed.
        Under READ COMMITTED a concurrent starter waits for the row lock, then re-checks the
        condition against the committed claim, so exactly one wins.
        """
        _check_belongs(user_message, conversation_id)
        parameters = {
            **_message_parameters(user_message),
            "p_conversation_id": conversation_id,
            "p_owner_id": owner_id,
            "p_claim_id": claim_id,
            "p_now": now,
            "p_until": until,
        }
        version = (await self._runner.execute(_START_REPLY, parameters)).scalar_one_or_none()
        if version is not None:
            return ReplyStart("started", history_version=version)
        owned = select(conversations.c.id).where(
            conversations.c.id == conversation_id, conversations.c.user_id == owner_id
        )
        return ReplyStart("busy" if (await self._runner.execute(owned)).first() is not None else "not_found")

    async def finish_reply(
        self, conversation_id: UUID, *, claim_id: UUID, history_version: int, now: datetime, reply: Message
    ) -> ReplyFinish:
        """One statement: the INSERT reads the row the UPDATE matched, so a reply lands only in the
        history version it answers; only a refusal costs a second statement (discarded or gone?).

        Counted in SQL, not read-modify-write; the slot is freed only by its holder. The version
        is checked on the row the UPDATE locks: a clear committed meanwhile is seen (READ
        COMMITTED re-checks the condition on the newest row version).
        """
        _check_belongs(reply, conversation_id)
        parameters = {
            **_message_parameters(reply),
            "p_conversation_id": conversation_id,
            "p_claim_id": claim_id,
            "p_history_version": history_version,
            "p_now": now,
        }
        if (await self._runner.execute(_FINISH_REPLY, parameters)).scalar_one() == 1:
            return "stored"
        exists = select(conversations.c.id).where(conversations.c.id == conversation_id)
        return "discarded" if (await self._runner.execute(exists)).first() is not None else "gone"

    async def release_reply(self, conversation_id: UUID, *, claim_id: UUID) -> None:
        statement = (
            update(conversations)
            .where(conversations.c.id == conversation_id, conversations.c.reply_claim_id == claim_id)
            .values(reply_claim_id=None, reply_claim_expires_at=None)
        )
        await self._runner.execute(statement)

    async def _update(self, conversation_id: UUID, **values: object) -> None:
        statement = update(conversations).where(conversations.c.id == conversation_id).values(**values)
        await self._runner.execute(statement)


def _check_belongs(message: Message, conversation_id: UUID) -> None:
    """A precondition of the port: the message must be one of the conversation being claimed/freed."""
    if message.conversation_id != conversation_id:
        raise ValueError(f"message {message.id} belongs to another conversation")


# The two statements of every chat turn are built once, with named parameters: SQLAlchemy
# memoizes a statement object's cache key, so reusing the object skips rebuilding the
# statement and re-deriving its key on every call (~5 % of setting a turn up, profiled).
# Parameters: p_* for the conversation, m_* for the message's columns.
_MESSAGE_COLUMNS = [c.name for c in messages.c if c.name not in ("seq", "conversation_id")]


def _message_parameters(message: Message) -> dict[str, Any]:
    row = message_to_row(message)
    return {f"m_{name}": row[name] for name in _MESSAGE_COLUMNS}


def _message_values() -> list[BindParameter[Any]]:
    return [bindparam(f"m_{name}", type_=messages.c[name].type) for name in _MESSAGE_COLUMNS]


def _start_reply_statement() -> Select[tuple[int]]:
    """Claim (``UPDATE ... RETURNING id, history_version``), then ``INSERT INTO messages SELECT
    <m_*>, claimed.id FROM claimed``: a message row only if a conversation row was claimed.
    Returns the claimed history version: one row if claimed, none otherwise."""
    now = bindparam("p_now", type_=conversations.c.updated_at.type)
    claimed = (
        update(conversations)
        .where(
            conversations.c.id == bindparam("p_conversation_id", type_=conversations.c.id.type),
            conversations.c.user_id == bindparam("p_owner_id", type_=conversations.c.user_id.type),
            or_(
                conversations.c.reply_claim_id.is_(None),
                conversations.c.reply_claim_expires_at <= now,
            ),
        )
        .values(
            reply_claim_id=bindparam("p_claim_id", type_=conversations.c.reply_claim_id.type),
            reply_claim_expires_at=bindparam("p_until", type_=conversations.c.reply_claim_expires_at.type),
            message_count=conversations.c.message_count + 1,
            last_active_at=now,
            updated_at=now,
        )
        .returning(conversations.c.id, conversations.c.history_version)
        .cte("claimed")
    )
    stored = (
        insert(messages)
        .from_select([*_MESSAGE_COLUMNS, "conversation_id"], select(*_message_values(), claimed.c.id))
        .cte("stored")
    )
    # PostgreSQL runs a data-modifying CTE exactly once even though nothing reads it.
    return select(claimed.c.history_version).add_cte(stored)


def _finish_reply_statement() -> Select[int]:
    """``UPDATE conversations ... WHERE history_version = <p> RETURNING id``, then the INSERT
    reads that row: the reply is stored only if the version matched. Returns how many were stored."""
    now = bindparam("p_now", type_=conversations.c.updated_at.type)
    holds = conversations.c.reply_claim_id == bindparam(
        "p_claim_id", type_=conversations.c.reply_claim_id.type
    )
    target = (
        update(conversations)
        .where(
            conversations.c.id == bindparam("p_conversation_id", type_=conversations.c.id.type),
            conversations.c.history_version
            == bindparam("p_history_version", type_=conversations.c.history_version.type),
        )
        .values(
            message_count=conversations.c.message_count + 1,
            last_active_at=now,
            updated_at=now,
            reply_claim_id=case((holds, None), else_=conversations.c.reply_claim_id),
            reply_claim_expires_at=case((holds, None), else_=conversations.c.reply_claim_expires_at),
        )
        .returning(conversations.c.id)
        .cte("target")
    )
    stored = (
        insert(messages)
        .from_select([*_MESSAGE_COLUMNS, "conversation_id"], select(*_message_values(), target.c.id))
        .returning(literal_column("1"))
        .cte("stored")
    )
    return select(func.count()).select_from(stored)


_START_REPLY = _start_reply_statement()
_FINISH_REPLY = _finish_reply_statement()


class PostgresMessageRepository:
    """:class:`parley.ports.persistence.MessageRepository` on ``messages`` (ordered by ``seq``)."""

    def __init__(self, runner: StatementRunner) -> None:
        self._runner = runner

    async def add(self, message: Message) -> None:
        await self._runner.execute(insert(messages).values(message_to_row(message)))

    async def update(self, message: Message) -> None:
        statement = (
            update(messages)
            .where(messages.c.id == message.id)
            .values(content=message.content, status=message.status.value)
        )
        await self._runner.execute(statement)

    async def page(self, conversation_id: UUID, *, limit: int, before: UUID | None) -> MessagePage:
        """Newest-first scan of ``limit + 1`` rows, returned oldest first.

        An unknown ``before`` makes the anchor subquery NULL, so nothing matches: an empty page.
        """
        statement = (
            select(*_message_columns)
            .where(messages.c.conversation_id == conversation_id)
            .order_by(messages.c.seq.desc())
            .limit(limit + 1)
        )
        if before is not None:
            anchor = (
                select(messages.c.seq)
                .where(messages.c.id == before, messages.c.conversation_id == conversation_id)
                .scalar_subquery()
            )
            statement = statement.where(messages.c.seq < anchor)
        rows = (await self._runner.execute(statement)).mappings().all()
        newest = [message_from_row(row) for row in rows[:limit]]
        return MessagePage(items=newest[::-1], has_older=len(rows) > limit)
