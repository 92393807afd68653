"""Message history: read it page by page, or clear it (with the agent's memory)."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from parley.application.chat.conversations import load_owned, stop_and_forget
from parley.application.chat.running import RunningTurns
from parley.application.principal import Principal
from parley.domain.chat import Message
from parley.domain.errors import HistoryCleared
from parley.ports.agent import ChatAgent
from parley.ports.persistence import UnitOfWorkFactory
from parley.ports.system import Clock


@dataclass(frozen=True, slots=True)
class MessageList:
    """``items`` oldest first; ``next_cursor`` fetches the page before (None: no older messages)."""

    items: list[Message]
    next_cursor: str | None


class ListMessages:
    """The newest ``limit`` messages older than message ``before``, in chronological order."""

    def __init__(self, uow: UnitOfWorkFactory) -> None:
        self._uow = uow

    async def execute(
        self, principal: Principal, conversation_id: UUID, *, limit: int, before: UUID | None = None
    ) -> MessageList:
        async with self._uow() as uow:
            await load_owned(uow, principal, conversation_id)
            page = await uow.messages.page(conversation_id, limit=limit, before=before)
        next_cursor = str(page.items[0].id) if page.has_older and page.items else None
        return MessageList(page.items, next_cursor)


class ClearMessages:
    """Delete every message of a conversation and the agent's memory of them.

    - a reply being generated in this process is stopped first (its stream ends with
      :class:`HistoryCleared`); one running in another process is not stored when it ends (the
      history it answered is gone: see ``ReplySlots.finish_reply``);
    - the agent's memory is forgotten before the messages go (if that fails, nothing is cleared
      and the request can be retried) and again after (a turn may have ended in between).
    """

    def __init__(
        self, uow: UnitOfWorkFactory, agent: ChatAgent, clock: Clock, running: RunningTurns | None = None
    ) -> None:
        self._uow, self._agent, self._clock = uow, agent, clock
        self._running = running or RunningTurns()

    async def execute(self, principal: Principal, conversation_id: UUID) -> None:
        await stop_and_forget(
            principal, conversation_id, HistoryCleared(), self._uow, self._running, self._agent
        )
        async with self._uow() as uow:
            await load_owned(uow, principal, conversation_id)
            await uow.conversations.clear_history(conversation_id, self._clock.now())
            await uow.commit()
        await self._agent.forget(conversation_id)
