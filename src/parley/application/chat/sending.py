"""Sending a message: the use cases that start a chat turn and what they return.

- :class:`TakeTurn` validates the message, then tx 1: one atomic :class:`ReplySlots` call
  claims the conversation's single reply slot under the domain's rule
  (:class:`~parley.domain.chat.ReplySlot`: the owner only, one reply at a time, a dead
  holder's claim expires) and stores the user message; a second concurrent turn gets
  :class:`ReplyInProgress`, across processes too;
- :class:`SendMessage` (the non-streamed route) runs the started :class:`Turn` to its end;
  :class:`StreamReply` (the streaming route) hands it to the caller to stream.
"""

from __future__ import annotations

from contextlib import aclosing
from dataclasses import dataclass
from uuid import UUID

from parley.application.chat.turns import HeldClaim, ReplyFailed, ReplyStored, Turn, TurnServices
from parley.application.principal import Principal
from parley.domain.chat import Message, MessageContent, MessageRole, MessageStatus, ReplyClaim
from parley.domain.errors import ConversationNotFound, ReplyInProgress


class TakeTurn:
    """Start a turn: validate, store the user message and claim the conversation (tx 1).

    Raises ``ValidationFailed`` (content), ``ConversationNotFound`` or ``ReplyInProgress``
    before anything is stored. The returned :class:`Turn` runs the agent.
    """

    def __init__(self, services: TurnServices) -> None:
        self._services = services

    async def execute(
        self, principal: Principal, conversation_id: UUID, content: str, *, streaming: bool = True
    ) -> Turn:
        """``streaming=False``: the caller wants the whole reply only (cheaper model call)."""
        services = self._services
        text = MessageContent.parse(content, max_length=services.policy.max_message_chars).value
        now, claim_id = services.clock.now(), services.ids.new_id()
        message = Message(
            id=services.ids.new_id(),
            conversation_id=conversation_id,
            role=MessageRole.USER,
            content=text,
            status=MessageStatus.COMPLETE,
            created_at=now,
        )
        started = await services.reply_slots.start_reply(
            conversation_id,
            owner_id=principal.user_id,
            claim=ReplyClaim.taken(claim_id, now=now, ttl=services.policy.claim_ttl),
            now=now,
            user_message=message,
        )
        if started.outcome == "not_found":
            raise ConversationNotFound()
        if started.outcome == "busy":
            raise ReplyInProgress()
        claim = HeldClaim(claim_id, started.history_version, awaits_title=started.awaits_title)
        return Turn(services, principal, message, claim, streaming=streaming)


@dataclass(frozen=True, slots=True)
class Exchange:
    message: Message
    reply: Message


class SendMessage:
    """Send a message and wait for the whole reply: the non-streamed route's one use case.

    Starts the turn as :class:`TakeTurn` does (its errors before anything is stored), runs it
    to its end with the cheaper non-streamed model call, and returns both stored messages; a
    turn that ends badly raises its error (``AgentUnavailable``, ``StorageUnavailable``,
    ``HistoryCleared``, ...), after storing what it could.
    """

    def __init__(self, services: TurnServices) -> None:
        self._take_turn = TakeTurn(services)

    async def execute(self, principal: Principal, conversation_id: UUID, content: str) -> Exchange:
        turn = await self._take_turn.execute(principal, conversation_id, content, streaming=False)
        return await complete_turn(turn)


class StreamReply:
    """Send a message and have the reply as it is generated: the streaming route's one use case.

    Returns the started :class:`Turn`; its ``events()`` yield the reply's pieces and how it
    ended, and closing them (or :meth:`Turn.aclose`) stops the turn and keeps what was said.
    """

    def __init__(self, services: TurnServices) -> None:
        self._take_turn = TakeTurn(services)

    async def execute(self, principal: Principal, conversation_id: UUID, content: str) -> Turn:
        return await self._take_turn.execute(principal, conversation_id, content, streaming=True)


async def complete_turn(turn: Turn) -> Exchange:
    """Run a turn to its end without streaming; a failure is raised (after storing what it can)."""
    try:
        async with aclosing(turn.events()) as events:
            async for event in events:
                if isinstance(event, ReplyStored):
                    return Exchange(turn.user_message, event.message)
                if isinstance(event, ReplyFailed):
                    raise event.error
    finally:
        await turn.aclose()
    raise RuntimeError("turn ended without a reply")  # pragma: no cover - events() always ends with one
