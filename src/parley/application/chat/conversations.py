"""Conversation use cases: create, list, get, rename, delete.

Every lookup is scoped to the caller: another user's conversation is "not found",
never "forbidden", so its existence is not revealed.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from parley.application.chat.running import RunningTurns
from parley.application.principal import Principal
from parley.domain.chat import Conversation, ConversationCursor, ConversationName
from parley.domain.errors import ConversationNotFound
from parley.ports.agent import ChatAgent
from parley.ports.persistence import UnitOfWork, UnitOfWorkFactory
from parley.ports.system import Clock, IdGenerator


async def load_owned(uow: UnitOfWork, principal: Principal, conversation_id: UUID) -> Conversation:
    """The caller's conversation, or :class:`ConversationNotFound`."""
    conversation = await uow.conversations.get(conversation_id, owner_id=principal.user_id)
    if conversation is None:
        raise ConversationNotFound()
    return conversation


async def stop_and_forget(
    principal: Principal,
    conversation_id: UUID,
    error: Exception,
    uow: UnitOfWorkFactory,
    running: RunningTurns,
    agent: ChatAgent,
) -> None:
    """What deleting or clearing a conversation does before it changes any row: check the caller
    owns it (:class:`ConversationNotFound`), stop the caller's turn running in this process there
    (its events end with ``error``; the agent has written its last checkpoint), and forget what
    the agent remembers of it (if that fails, nothing has been deleted: the request can be retried).
    """
    async with uow() as read:
        await load_owned(read, principal, conversation_id)
    await running.interrupt([conversation_id], owner_id=principal.user_id, error=error)
    await agent.forget(conversation_id)


class CreateConversation:
    """Open a conversation; the name defaults to "New chat" and is trimmed (1..200 characters)."""

    def __init__(self, uow: UnitOfWorkFactory, clock: Clock, ids: IdGenerator) -> None:
        self._uow, self._clock, self._ids = uow, clock, ids

    async def execute(self, principal: Principal, name: str | None = None) -> Conversation:
        parsed = ConversationName.parse(name)
        now = self._clock.now()
        conversation = Conversation(
            id=self._ids.new_id(),
            user_id=principal.user_id,
            name=parsed.value,
            created_at=now,
            updated_at=now,
            last_active_at=now,
        )
        async with self._uow() as uow:
            await uow.conversations.add(conversation)
            await uow.commit()
        return conversation


@dataclass(frozen=True, slots=True)
class ConversationList:
    items: list[Conversation]
    next_cursor: str | None


class ListConversations:
    """The caller's conversations, most recently active first, by keyset pages.

    ``cursor`` is the opaque ``next_cursor`` of the previous page; a forged one is a
    validation error on field ``cursor``.
    """

    def __init__(self, uow: UnitOfWorkFactory) -> None:
        self._uow = uow

    async def execute(
        self, principal: Principal, *, limit: int, cursor: str | None = None
    ) -> ConversationList:
        after = ConversationCursor.decode(cursor) if cursor else None
        async with self._uow() as uow:
            page = await uow.conversations.list_for_owner(principal.user_id, limit=limit, after=after)
        return ConversationList(page.items, page.next_cursor.encode() if page.next_cursor else None)


class GetConversation:
    def __init__(self, uow: UnitOfWorkFactory) -> None:
        self._uow = uow

    async def execute(self, principal: Principal, conversation_id: UUID) -> Conversation:
        async with self._uow() as uow:
            return await load_owned(uow, principal, conversation_id)


class RenameConversation:
    """Rename; the name is trimmed and must be 1..200 characters."""

    def __init__(self, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow, self._clock = uow, clock

    async def execute(self, principal: Principal, conversation_id: UUID, name: str) -> Conversation:
        parsed = ConversationName.parse(name)
        now = self._clock.now()
        async with self._uow() as uow:
            conversation = await load_owned(uow, principal, conversation_id)
            await uow.conversations.rename(conversation_id, parsed.value, now)
            await uow.commit()
        conversation.name, conversation.updated_at = parsed.value, now
        return conversation


class DeleteConversation:
    """Delete a conversation with its messages and the agent's memory of it.

    - a reply being generated in this process is stopped first (its stream ends with
      "Session not found"); one running in another process finds the conversation gone when it
      stores its reply, and forgets what it remembered then;
    - the agent's memory is forgotten before the rows go (if that fails, nothing is deleted and
      the request can be retried) and again after (a turn may have ended in between).
    """

    def __init__(self, uow: UnitOfWorkFactory, agent: ChatAgent, running: RunningTurns | None = None) -> None:
        self._uow, self._agent = uow, agent
        self._running = running or RunningTurns()

    async def execute(self, principal: Principal, conversation_id: UUID) -> None:
        await stop_and_forget(
            principal, conversation_id, ConversationNotFound(), self._uow, self._running, self._agent
        )
        async with self._uow() as uow:
            await load_owned(uow, principal, conversation_id)
            await uow.conversations.delete(conversation_id)
            await uow.commit()
        await self._agent.forget(conversation_id)
