"""Sending a message: the use cases that start a chat turn and what they return.

- :class:`TakeTurn` validates the message, then tx 1: one atomic :class:`ReplySlots` call
  claims the conversation's single reply slot under the domain's rule
  (:class:`~parley.domain.chat.ReplySlot`: the owner only, one reply at a time, a dead
  holder's claim expires) and stores the user message; a second concurrent turn gets
  :class:`ReplyInProgress`, across processes too;
- :class:`SendMessage` (the non-streamed route) runs the started :class:`Turn` to its end;
  :class:`StreamReply` (the streaming route) hands it to the caller to stream;
- :class:`ResumeTurn` takes over a paused turn's slot with the user's decision about the tool
  call it waits for; :class:`DecideApproval` and :class:`StreamDecision` are the routes' use
  cases, as :class:`SendMessage` and :class:`StreamReply` are for a message.
"""

from __future__ import annotations

from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, Literal
from uuid import UUID

from parley.application.chat.turns import (
    ApprovalAwaited,
    HeldClaim,
    ReplyFailed,
    ReplyStored,
    Turn,
    TurnRequest,
    TurnServices,
)
from parley.application.principal import Principal
from parley.domain.approvals import ApprovalDecision, Approve, EditArguments, PendingApproval, Reject
from parley.domain.chat import Message, MessageContent, MessageRole, MessageStatus, ReplyClaim
from parley.domain.errors import (
    ApprovalExpired,
    ApprovalNotFound,
    ApprovalPending,
    ConversationNotFound,
    ReplyInProgress,
    ValidationFailed,
)
from parley.ports.agent import AgentResume
from parley.ports.persistence import ReplySlots
from parley.ports.system import Clock


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
        if started.outcome == "awaiting_approval":
            raise ApprovalPending()
        claim = HeldClaim(claim_id, started.history_version, awaits_title=started.awaits_title)
        request = TurnRequest.asking(message, principal.user_id, streaming=streaming)
        return Turn(services, principal, request, claim)


@dataclass(frozen=True, slots=True)
class Exchange:
    """How a turn run to its end went: ``reply`` stored, or (``reply`` None) the turn paused
    for ``approval``. ``message`` is the user message it answers (None for a resumed turn)."""

    message: Message | None
    reply: Message | None
    approval: PendingApproval | None = None


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


class ResumeTurn:
    """Resume a paused turn with the user's decision about the tool call it waits for.

    The decision (:class:`DecisionInput`) is ``"approve"``, ``"reject"`` (``reason`` optional, told to the
    model) or ``"edit"`` (``arguments`` required: the call runs with them). Raises ``ValidationFailed``,
    ``ConversationNotFound``, ``ApprovalNotFound`` (no such approval pending: never asked, decided already,
    or dropped after it expired), ``ApprovalExpired`` or ``ReplyInProgress`` (the turn
    runs again already) before anything changes. The returned :class:`Turn` runs the agent.
    """

    def __init__(self, services: TurnServices) -> None:
        self._services = services

    async def execute(
        self,
        principal: Principal,
        conversation_id: UUID,
        approval_id: UUID,
        data: DecisionInput,
        *,
        streaming: bool = True,
    ) -> Turn:
        services = self._services
        decision = data.parse()
        now, claim_id = services.clock.now(), services.ids.new_id()
        resumed = await services.reply_slots.resume_reply(
            conversation_id,
            owner_id=principal.user_id,
            approval_id=approval_id,
            claim=ReplyClaim.taken(claim_id, now=now, ttl=services.policy.claim_ttl),
            now=now,
        )
        match resumed.outcome:
            case "not_found":
                raise ConversationNotFound()
            case "no_approval":
                raise ApprovalNotFound()
            case "expired":
                raise ApprovalExpired()
            case "busy":
                raise ReplyInProgress()
        approval = resumed.approval
        assert approval is not None  # "resumed" carries it
        agent_input = AgentResume(conversation_id, principal.user_id, decision, stream_tokens=streaming)
        request = TurnRequest(
            conversation_id,
            agent_input,
            input_text=_describe(decision, approval),
            reply_prefix=approval.reply_so_far,
        )
        return Turn(services, principal, request, HeldClaim(claim_id, resumed.history_version))


@dataclass(frozen=True, slots=True)
class DecisionInput:
    """A decision as a client sends it: ``decision`` is ``"approve"``, ``"reject"`` or ``"edit"``."""

    decision: Literal["approve", "reject", "edit"]
    reason: str | None = None
    arguments: dict[str, Any] | None = None

    def parse(self) -> ApprovalDecision:
        """The domain's decision (its rules: :mod:`parley.domain.approvals`); ``edit`` needs arguments."""
        if self.decision == "reject":
            return Reject.parse(self.reason)
        if self.decision == "edit":
            if self.arguments is None:
                raise ValidationFailed.single("arguments", "Arguments are required to edit a tool call")
            return EditArguments.parse(self.arguments)
        return Approve()


def _describe(decision: ApprovalDecision, approval: PendingApproval) -> str:
    """The resumed turn's input, as traced: what the user decided about which tool."""
    match decision:
        case Reject(reason=reason):
            return f"rejected {approval.tool}" + (f": {reason}" if reason else "")
        case EditArguments():
            return f"approved {approval.tool} with edited arguments"
        case _:
            return f"approved {approval.tool}"


class GetPendingApproval:
    """The approval a conversation's paused turn waits for; ``ApprovalNotFound`` when there is
    none open (or the conversation is not the principal's: its existence is not revealed)."""

    def __init__(self, reply_slots: ReplySlots, clock: Clock) -> None:
        self._reply_slots, self._clock = reply_slots, clock

    async def execute(self, principal: Principal, conversation_id: UUID) -> PendingApproval:
        pending = await self._reply_slots.pending_approval(
            conversation_id, owner_id=principal.user_id, now=self._clock.now()
        )
        if pending is None:
            raise ApprovalNotFound()
        return pending


class DecideApproval:
    """Decide a pending approval and wait until the turn ends or pauses again (the JSON route)."""

    def __init__(self, services: TurnServices) -> None:
        self._resume = ResumeTurn(services)

    async def execute(
        self, principal: Principal, conversation_id: UUID, approval_id: UUID, data: DecisionInput
    ) -> Exchange:
        turn = await self._resume.execute(principal, conversation_id, approval_id, data, streaming=False)
        return await complete_turn(turn)


class StreamDecision:
    """Decide a pending approval and stream the resumed turn (the streaming route)."""

    def __init__(self, services: TurnServices) -> None:
        self._resume = ResumeTurn(services)

    async def execute(
        self, principal: Principal, conversation_id: UUID, approval_id: UUID, data: DecisionInput
    ) -> Turn:
        return await self._resume.execute(principal, conversation_id, approval_id, data, streaming=True)


async def complete_turn(turn: Turn) -> Exchange:
    """Run a turn to its end without streaming; a failure is raised (after storing what it can)."""
    try:
        async with aclosing(turn.events()) as events:
            async for event in events:
                if isinstance(event, ReplyStored):
                    return Exchange(turn.user_message, event.message)
                if isinstance(event, ApprovalAwaited):
                    return Exchange(turn.user_message, None, event.approval)
                if isinstance(event, ReplyFailed):
                    raise event.error
    finally:
        await turn.aclose()
    raise RuntimeError("turn ended without a reply")  # pragma: no cover - events() always ends with one
