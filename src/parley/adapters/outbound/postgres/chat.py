"""Repositories for conversations and their messages."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy import case, delete, func, insert, literal, literal_column, or_, select, tuple_, update
from sqlalchemy.sql.dml import Insert
from sqlalchemy.sql.selectable import CTE

from parley.domain.chat import Conversation, ConversationCursor, Message
from parley.ports.persistence import ConversationPage, MessagePage, ReplyStart

from .mappers import conversation_from_row, conversation_to_row, message_from_row, message_to_row
from .statements import StatementRunner
from .tables import conversations, messages

_conversation_columns = [c for c in conversations.c if not c.name.startswith("reply_claim")]
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

    async def reset_messages(self, conversation_id: UUID, now: datetime) -> None:
        await self._update(conversation_id, message_count=0, updated_at=now)

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
        claimed = (
            update(conversations)
            .where(
                conversations.c.id == conversation_id,
                conversations.c.user_id == owner_id,
                or_(
                    conversations.c.reply_claim_id.is_(None),
                    conversations.c.reply_claim_expires_at <= now,
                ),
            )
            .values(
                reply_claim_id=claim_id,
                reply_claim_expires_at=until,
                message_count=conversations.c.message_count + 1,
                last_active_at=now,
                updated_at=now,
            )
            .returning(conversations.c.id)
            .cte("claimed")
        )
        stored = _insert_if_claimed(user_message, claimed).returning(literal_column("1")).cte("stored")
        statement = select(func.count()).select_from(stored)
        if (await self._runner.execute(statement)).scalar_one() == 1:
            return "started"
        owned = select(conversations.c.id).where(
            conversations.c.id == conversation_id, conversations.c.user_id == owner_id
        )
        return "busy" if (await self._runner.execute(owned)).first() is not None else "not_found"

    async def finish_reply(
        self, conversation_id: UUID, *, claim_id: UUID, now: datetime, reply: Message
    ) -> None:
        """One statement: the INSERT rides along as a data-modifying CTE.

        PostgreSQL runs such a CTE exactly once even though nothing reads it. Counted in SQL,
        not read-modify-write; the slot is freed only by its holder. A conversation deleted
        meanwhile fails the messages foreign key, as a separate INSERT would, and nothing changes.
        """
        _check_belongs(reply, conversation_id)
        holds = conversations.c.reply_claim_id == claim_id
        stored = insert(messages).values(message_to_row(reply)).cte("stored")
        statement = (
            update(conversations)
            .where(conversations.c.id == conversation_id)
            .values(
                message_count=conversations.c.message_count + 1,
                last_active_at=now,
                updated_at=now,
                reply_claim_id=case((holds, None), else_=conversations.c.reply_claim_id),
                reply_claim_expires_at=case((holds, None), else_=conversations.c.reply_claim_expires_at),
            )
            .add_cte(stored)
        )
        await self._runner.execute(statement)

    async def _update(self, conversation_id: UUID, **values: object) -> None:
        statement = update(conversations).where(conversations.c.id == conversation_id).values(**values)
        await self._runner.execute(statement)


def _check_belongs(message: Message, conversation_id: UUID) -> None:
    """A precondition of the port: the message must be one of the conversation being claimed/freed."""
    if message.conversation_id != conversation_id:
        raise ValueError(f"message {message.id} belongs to another conversation")


def _insert_if_claimed(message: Message, claimed: CTE) -> Insert:
    """``INSERT INTO messages SELECT <values>, claimed.id FROM claimed``: a row only if one was claimed.

    The values are parameters typed like their columns, so they bind exactly as in a plain INSERT.
    """
    row = message_to_row(message)
    del row["conversation_id"]  # taken from the claimed row instead
    values = [literal(value, messages.c[name].type) for name, value in row.items()]
    return insert(messages).from_select([*row, "conversation_id"], select(*values, claimed.c.id))


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

    async def delete_all(self, conversation_id: UUID) -> None:
        await self._runner.execute(delete(messages).where(messages.c.conversation_id == conversation_id))
