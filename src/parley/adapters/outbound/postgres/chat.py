"""Repositories for conversations and their messages."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy import case, delete, insert, select, tuple_, update

from parley.domain.chat import Conversation, ConversationCursor
from parley.ports.persistence import ConversationPage, MessagePage

from .mappers import conversation_from_row, conversation_to_row, message_from_row
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
        row = (await self._runner.read(statement)).mappings().one_or_none()
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
        rows = (await self._runner.read(statement)).mappings().all()
        page = [conversation_from_row(row) for row in rows[:limit]]
        has_more = len(rows) > limit and bool(page)
        next_cursor = ConversationCursor(page[-1].last_active_at, page[-1].id) if has_more else None
        return ConversationPage(items=page, next_cursor=next_cursor)

    async def rename(self, conversation_id: UUID, name: str, now: datetime) -> None:
        await self._update(conversation_id, name=name, updated_at=now)

    async def rename_if_named(
        self, conversation_id: UUID, *, expected: str, name: str, now: datetime
    ) -> bool:
        """One ``UPDATE ... WHERE name = :expected``: a rename committed meanwhile is re-checked
        on the newest row version (READ COMMITTED), so it wins."""
        statement = (
            update(conversations)
            .where(conversations.c.id == conversation_id, conversations.c.name == expected)
            .values(name=name, updated_at=now)
            .returning(conversations.c.id)
        )
        return (await self._runner.execute(statement)).first() is not None

    async def delete(self, conversation_id: UUID) -> None:
        # Messages go with it: ON DELETE CASCADE.
        await self._runner.execute(delete(conversations).where(conversations.c.id == conversation_id))

    async def ids_for_owner(self, owner_id: UUID) -> list[UUID]:
        statement = (
            select(conversations.c.id)
            .where(conversations.c.user_id == owner_id)
            .order_by(conversations.c.last_active_at.desc(), conversations.c.id.desc())
        )
        return list((await self._runner.read(statement)).scalars().all())

    async def clear_history(self, conversation_id: UUID, now: datetime) -> None:
        """The conversation's row first: its lock makes a concurrent start or finish of a reply
        (see reply_slots.py) wait, or be waited for; then the DELETE (a new snapshot under READ
        COMMITTED) sees every message stored before the lock was granted."""
        # ReplySlot.cleared: a paused turn's claim goes with its approval (nothing runs to free it).
        paused = conversations.c.pending_approval.is_not(None)
        await self._update(
            conversation_id,
            message_count=0,
            updated_at=now,
            history_version=conversations.c.history_version + 1,
            reply_claim_id=case((paused, None), else_=conversations.c.reply_claim_id),
            reply_claim_expires_at=case((paused, None), else_=conversations.c.reply_claim_expires_at),
            pending_approval=None,
        )
        await self._runner.execute(delete(messages).where(messages.c.conversation_id == conversation_id))

    async def _update(self, conversation_id: UUID, **values: object) -> None:
        statement = update(conversations).where(conversations.c.id == conversation_id).values(**values)
        await self._runner.execute(statement)


class PostgresMessageRepository:
    """:class:`parley.ports.persistence.MessageRepository` on ``messages`` (ordered by ``seq``)."""

    def __init__(self, runner: StatementRunner) -> None:
        self._runner = runner

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
        rows = (await self._runner.read(statement)).mappings().all()
        newest = [message_from_row(row) for row in rows[:limit]]
        return MessagePage(items=newest[::-1], has_older=len(rows) > limit)
