"""A running chat turn: the agent answers, the reply is stored (:class:`Turn`).

The use cases that start one are in :mod:`parley.application.chat.sending`.

Transactions never span the model call:
- tx 1 claims the conversation's single reply slot and stores the user message
  (a second concurrent turn gets :class:`ReplyInProgress`, across processes too,
  because the claim lives in the database and expires if its holder dies); the
  claim also checks ownership and counts the message;
- the agent runs with no connection held;
- tx 2 stores the reply as ``complete``, ``failed`` (model or database error) or
  ``incomplete`` (the caller went away, or the turn was interrupted), and frees the slot.

What can happen to a running turn, and what the caller sees last:
- the history is cleared or the conversation deleted, here or by another instance: the
  reply is not stored, the agent forgets what it just remembered, and the turn ends with
  :class:`HistoryCleared` / :class:`ConversationNotFound` (a turn running in this process is
  stopped at once, see :class:`RunningTurns`);
- the database is unreachable (for the agent's memory or for tx 2): the turn ends with
  :class:`StorageUnavailable`; the reply is stored, and the slot freed, once the database
  answers again (:class:`DeferredWrites`), so the conversation is not left claimed;
- the agent calls a tool that needs the user's approval: instead of tx 2, the turn pauses
  (:meth:`ReplySlots.pause_reply`): the slot stays held, with the pending approval, until the
  user decides or the approval expires; the turn ends with :class:`ApprovalAwaited`. A decision
  starts a resumed turn (no new user message) whose reply begins with what the paused one said.

Each of tx 1 and tx 2 is one atomic :class:`ReplySlots` call, with no unit of work around it:
for PostgreSQL one statement, with no BEGIN/COMMIT round trips.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from contextlib import suppress
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from parley.application.chat.agent_run import AgentInterrupted, AgentRun, wait_through_cancellation
from parley.application.chat.observer import TurnObserver
from parley.application.chat.running import DeferredWrites, RunningTurns
from parley.application.chat.titles import ChatTitles, TitleJob
from parley.application.memory import UserMemory
from parley.application.principal import Principal
from parley.domain.approvals import PendingApproval
from parley.domain.chat import (
    DEFAULT_MAX_MESSAGE_LENGTH,
    Conversation,
    Message,
    MessageRole,
    MessageStatus,
    storable_arguments,
    storable_text,
)
from parley.domain.errors import ConversationNotFound, HistoryCleared
from parley.ports.agent import (
    AgentError,
    AgentResume,
    AgentTurn,
    ApprovalRequested,
    ChatAgent,
    TokenDelta,
    ToolCall,
)
from parley.ports.persistence import ReplyFinish, ReplySlots, StorageUnavailable
from parley.ports.system import Clock, IdGenerator
from parley.ports.tracing import Tracer, TurnStarted


@dataclass(frozen=True, slots=True)
class ReplyStored:
    """The turn ended well: the stored assistant message and the tokens it cost; ``renamed`` is
    the conversation when its title was stored with the reply (its first exchange)."""

    message: Message
    prompt_tokens: int
    completion_tokens: int
    model: str | None = None  # the model that produced the reply (its last model call)
    renamed: Conversation | None = None  # the conversation, when this turn named it


@dataclass(frozen=True, slots=True)
class ReplyFailed:
    """The turn ended with ``error`` (the model failed, the database was unreachable, the turn
    was interrupted); ``message`` is the reply as stored (``failed``/``incomplete``), or None
    when it was not stored."""

    message: Message | None
    error: Exception


@dataclass(frozen=True, slots=True)
class ApprovalAwaited:
    """The turn paused: ``approval`` waits for the user's decision (the slot stays held until it
    expires); the tokens are those this part of the turn cost."""

    approval: PendingApproval
    prompt_tokens: int
    completion_tokens: int


TurnEvent = TokenDelta | ToolCall | ReplyStored | ReplyFailed | ApprovalAwaited


@dataclass(frozen=True, slots=True)
class TurnPolicy:
    max_message_chars: int = DEFAULT_MAX_MESSAGE_LENGTH
    claim_ttl: timedelta = timedelta(minutes=5)  # longer than the model's total timeout
    approval_ttl: timedelta = timedelta(hours=1)  # how long a paused turn waits for a decision


@dataclass(frozen=True, slots=True)
class TurnRequest:
    """What a turn answers: a new user message (stored by tx 1), or the user's decision about the
    tool call a paused turn waits for (``user_message`` None; the reply starts with
    ``reply_prefix``, what the paused turn said already). ``input_text`` is traced as its input."""

    conversation_id: UUID
    agent_input: AgentTurn | AgentResume
    input_text: str
    user_message: Message | None = None
    reply_prefix: str = ""

    @classmethod
    def asking(cls, message: Message, user_id: UUID, *, streaming: bool) -> TurnRequest:
        agent_turn = AgentTurn(
            conversation_id=message.conversation_id,
            user_id=user_id,
            content=message.content,
            stream_tokens=streaming,
        )
        return cls(message.conversation_id, agent_turn, message.content, user_message=message)


@dataclass(frozen=True, slots=True)
class TurnServices:
    """What a turn needs, shared by the use case that starts it and the :class:`Turn` itself."""

    reply_slots: ReplySlots
    agent: ChatAgent
    tracer: Tracer
    clock: Clock
    ids: IdGenerator
    policy: TurnPolicy = TurnPolicy()
    running: RunningTurns = field(default_factory=RunningTurns)
    deferred: DeferredWrites = field(default_factory=DeferredWrites)
    titles: ChatTitles | None = None  # None: conversations are never named automatically
    memory: UserMemory | None = None  # None: no long-term memory (nothing recalled or learnt)


@dataclass(frozen=True, slots=True)
class HeldClaim:
    """The reply slot a turn holds, the history version its reply answers, and whether the
    conversation awaits its title (:attr:`parley.ports.persistence.ReplyStart.awaits_title`)."""

    claim_id: UUID
    history_version: int
    awaits_title: bool = False


class Turn:
    """A claimed turn whose user message is stored; the agent starts at once (:class:`AgentRun`).

    - ``events()`` yields token deltas and tool calls as they happen, then exactly one
      :class:`ReplyStored` or :class:`ReplyFailed`; a :class:`TurnObserver` accounts for
      every event on the way (reply text, usage, tracing);
    - closing the iterator or cancelling its task stops the agent (and its upstream
      request) and stores what was produced as ``incomplete``;
    - :meth:`interrupt` stops the agent from outside (a delete, a clear, a shutdown):
      ``events()`` then stores what was produced as ``incomplete`` and ends with the error;
    - :meth:`aclose` finishes a turn whose events were never (fully) consumed, and returns
      only once the reply is stored, even if its caller is cancelled meanwhile; it is
      idempotent, so callers may always call it.
    """

    def __init__(
        self,
        services: TurnServices,
        principal: Principal,
        request: TurnRequest,
        claim: HeldClaim,
    ) -> None:
        self.user_message = request.user_message
        self._conversation_id, self._reply_prefix = request.conversation_id, request.reply_prefix
        self._services, self._principal, self._claim = services, principal, claim
        self._finished = False
        self._asked: ApprovalRequested | None = None
        self._title: TitleJob | None = None
        self._renamed: Conversation | None = None
        self._closing: asyncio.Future[Any] | None = None
        self._deadline = asyncio.get_running_loop().time() + services.policy.claim_ttl.total_seconds()
        self._observer = TurnObserver(
            services.tracer,
            services.clock,
            TurnStarted(
                user_id=principal.user_id,
                conversation_id=request.conversation_id,
                input_text=request.input_text,
                streaming=request.agent_input.stream_tokens,
                at=services.clock.now(),
            ),
        )
        self._agent = AgentRun(
            services.agent,
            request.agent_input,
            recall=services.memory.recall if services.memory is not None else None,
        )
        services.running.add(self)

    @property
    def conversation_id(self) -> UUID:
        return self._conversation_id

    @property
    def owner_id(self) -> UUID:
        return self._principal.user_id

    async def events(self) -> AsyncGenerator[TurnEvent, None]:
        error: Exception | None = None
        status = MessageStatus.COMPLETE
        try:
            async for event in self._agent.events():
                self._observer.saw(event)
                if isinstance(event, TokenDelta | ToolCall):
                    yield event
                elif isinstance(event, ApprovalRequested):
                    self._asked = event
        except (AgentError, StorageUnavailable) as failure:
            self._observer.failed(failure)
            error, status = failure, MessageStatus.FAILED
        except AgentInterrupted as interrupted:
            self._observer.failed(interrupted.error)
            error, status = interrupted.error, MessageStatus.INCOMPLETE
        except Exception as bug:  # a bug below: keep what we have, marked failed
            self._observer.failed(bug)
            await self._finish(MessageStatus.FAILED)
            raise
        except BaseException:
            # Closed or cancelled: stop the agent, then save what we have, in a task that a
            # re-cancelling framework cannot interrupt; aclose() waits for it.
            closing = self._closing = asyncio.ensure_future(self._abandon())
            await wait_through_cancellation(closing)
            raise
        if error is None and self._asked is not None:
            paused = await self._pause(self._asked)
            if isinstance(paused, ApprovalAwaited):
                self._learn()
            yield paused
            return
        if error is None:
            await self._begin_title()
        outcome = await self._outcome(status, error)
        if isinstance(outcome, ReplyStored):
            self._learn()
        yield outcome

    def _learn(self) -> None:
        """Have long-term memory learn from the user's message, once the turn answered it (or
        paused to ask about a tool call: the message stands). A resumed turn brings no new one."""
        memory = self._services.memory
        if memory is not None and self.user_message is not None:
            memory.learn(self.owner_id, self.conversation_id, self.user_message.content)

    async def _begin_title(self) -> None:
        """Start naming the conversation after its first exchange, when it awaits a title.

        Then one pass of the event loop (no waiting on the writer): a writer that answers at once
        (the offline one) is ready by then, and its title is stored with the reply.
        """
        titles = self._services.titles
        if titles is None or not self._claim.awaits_title:
            return
        question = self.user_message.content if self.user_message is not None else ""
        self._title = titles.begin(self.conversation_id, question, self._observer.text)
        if self._title is not None:
            await asyncio.sleep(0)

    async def _outcome(self, status: MessageStatus, error: Exception | None) -> ReplyStored | ReplyFailed:
        """Store the reply; the turn's last event says how it ended."""
        try:
            reply, stored = await self._finish(status)
        except StorageUnavailable as unavailable:
            return ReplyFailed(None, error if isinstance(error, StorageUnavailable) else unavailable)
        if stored != "stored":
            return _lost(stored)
        if error is not None:
            return ReplyFailed(reply, error)
        observer = self._observer
        return ReplyStored(
            reply, observer.prompt_tokens, observer.completion_tokens, observer.model, renamed=self._renamed
        )

    async def interrupt(self, error: Exception) -> None:
        """Stop the agent now; ``events()`` stores what was produced as ``incomplete`` and ends
        with ``error``. Returns once the agent has stopped (its checkpoint writes done)."""
        await self._agent.interrupt(error)

    async def aclose(self) -> None:
        """Store what was produced as ``incomplete`` unless the turn already ended; wait for a
        clean-up already under way, through cancellations (raised again once it is done)."""
        if self._closing is None and not self._finished:
            self._closing = asyncio.ensure_future(self._abandon())
        if self._closing is not None:
            await wait_through_cancellation(self._closing)

    async def _abandon(self) -> None:
        await self._agent.stop()  # the agent has closed its upstream request
        if not self._finished:
            # Retried in the background by _finish when the database is down; nobody is listening.
            with suppress(StorageUnavailable):
                await self._finish(MessageStatus.INCOMPLETE)

    async def _finish(self, status: MessageStatus) -> tuple[Message, ReplyFinish]:
        """tx 2 (runs once): store the assistant message and free the reply slot.

        When the database is unreachable, :class:`StorageUnavailable` is raised and the write is
        retried in the background (a ``complete`` reply then stored as ``failed``: its caller saw
        the turn fail) until the claim would have expired anyway.
        """
        self._finished = True
        self._services.running.discard(self)
        uc = self._services
        now = uc.clock.now()
        reply = Message(
            id=uc.ids.new_id(),
            conversation_id=self._conversation_id,
            role=MessageRole.ASSISTANT,
            content=self._reply_prefix + self._observer.text,
            status=status,
            created_at=now,
        )
        title = (
            self._title.suggested if self._title is not None and status is MessageStatus.COMPLETE else None
        )
        stored: ReplyFinish | None = None
        try:
            stored = await self._store(reply, now, title=title)
            return reply, stored
        except StorageUnavailable:
            # The caller is told the turn failed, so a complete reply stored later says so too.
            late = replace(reply, status=MessageStatus.FAILED) if status is MessageStatus.COMPLETE else reply
            uc.deferred.retry(
                lambda: self._store(late, now),
                within=max(0.0, self._deadline - asyncio.get_running_loop().time()),
                what=f"storing the reply of conversation {reply.conversation_id}",
            )
            raise
        finally:
            if self._title is not None:
                # Not stored with the reply: the job stores it later, after a complete reply only.
                complete = stored == "stored" and status is MessageStatus.COMPLETE
                self._title.reply_finished(store_later=complete and title is None)
            self._observer.ended(status, now)

    async def _store(self, reply: Message, now: datetime, *, title: str | None = None) -> ReplyFinish:
        """Store the reply into the history version it answers (with ``title`` as the
        conversation's name while it has the default one). If that history was cleared, or
        the conversation deleted, meanwhile, the agent forgets what it remembered of it, then the
        slot is freed (in that order: a new turn must not read the forgotten memory)."""
        uc, claim = self._services, self._claim
        if title is None:
            stored = await uc.reply_slots.finish_reply(
                reply.conversation_id,
                claim_id=claim.claim_id,
                history_version=claim.history_version,
                now=now,
                reply=reply,
            )
        else:
            titled = await uc.reply_slots.finish_titled_reply(
                reply.conversation_id,
                claim_id=claim.claim_id,
                history_version=claim.history_version,
                now=now,
                reply=reply,
                title=title,
            )
            stored, self._renamed = titled.outcome, titled.renamed
        if stored != "stored":
            await self._let_go(stored)
        return stored

    async def _let_go(self, refused: ReplyFinish) -> None:
        """The history was cleared (``"discarded"``) or the conversation deleted (``"gone"``) while
        the turn ran: the agent forgets what it remembered of it, then the slot is freed (in that
        order: a new turn must not read the forgotten memory)."""
        await self._services.agent.forget(self._conversation_id)
        if refused == "discarded":
            await self._services.reply_slots.release_reply(
                self._conversation_id, claim_id=self._claim.claim_id
            )

    async def _pause(self, asked: ApprovalRequested) -> ApprovalAwaited | ReplyFailed:
        """Keep the slot for the user's decision about ``asked`` (instead of tx 2)."""
        self._finished = True
        uc = self._services
        uc.running.discard(self)
        now = uc.clock.now()
        approval = PendingApproval(
            id=uc.ids.new_id(),
            tool=storable_text(asked.tool),
            arguments=storable_arguments(asked.arguments),
            requested_at=now,
            expires_at=now + uc.policy.approval_ttl,
            reply_so_far=self._reply_prefix + self._observer.text,
        )
        try:
            paused = await uc.reply_slots.pause_reply(
                self._conversation_id,
                claim_id=self._claim.claim_id,
                history_version=self._claim.history_version,
                approval=approval,
            )
            if paused != "stored":
                await self._let_go(paused)
        except StorageUnavailable as unavailable:
            # The claim expires as a dead holder's would; a new message then abandons the pause.
            self._observer.failed(unavailable)
            return ReplyFailed(None, unavailable)
        finally:
            self._observer.ended("awaiting_approval", now)
        if paused != "stored":
            return _lost(paused)
        observer = self._observer
        return ApprovalAwaited(approval, observer.prompt_tokens, observer.completion_tokens)


def _lost(refused: ReplyFinish) -> ReplyFailed:
    """How a turn ends whose reply (or pause) the history no longer takes: the conversation was
    deleted (``"gone"``) or its history cleared (``"discarded"``) while the turn ran."""
    return ReplyFailed(None, ConversationNotFound() if refused == "gone" else HistoryCleared())
