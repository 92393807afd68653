"""The language-model agent port: runs one chat turn, handing typed events to a sink."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol
from uuid import UUID

from parley.domain.approvals import ApprovalDecision


class AgentError(Exception):
    """Base of the agent's failures; ``model`` names the model that failed, when known."""

    def __init__(self, message: str = "", *, model: str | None = None) -> None:
        super().__init__(message)
        self.model = model


class AgentUnavailable(AgentError):
    """The model failed (non-retryable error, or retries exhausted)."""


class AgentTimeout(AgentError):
    """The model did not finish within the turn's total time budget."""


@dataclass(frozen=True, slots=True)
class TokenDelta:
    """A piece of the reply text, in order."""

    text: str


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A tool the agent called, with its arguments and (stringified) result."""

    name: str
    arguments: dict[str, Any] = field(default_factory=dict)
    result: str = ""


@dataclass(frozen=True, slots=True)
class ModelRetry:
    """A retryable model failure of ``model``; the adapter is about to try again: the same
    model, or (``fallback`` set) the next of its fallback models, after ``model``'s retries."""

    attempt: int
    reason: str
    model: str
    fallback: str | None = None


@dataclass(frozen=True, slots=True)
class Usage:
    """Emitted once per model call, after it completes, naming the model that answered."""

    model: str
    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True, slots=True)
class ApprovalRequested:
    """The agent called ``tool``, which needs the user's approval, and paused: emitted last,
    once the pause is remembered; the run then returns. :meth:`ChatAgent.resume` goes on."""

    tool: str
    arguments: dict[str, Any] = field(default_factory=dict)


AgentEvent = TokenDelta | ToolCall | ModelRetry | Usage | ApprovalRequested
EventSink = Callable[[AgentEvent], None]


@dataclass(frozen=True, slots=True)
class AgentTurn:
    """The new user message of one turn; the agent keeps the earlier turns itself.

    ``stream_tokens=False`` says the caller only wants the whole reply: the agent may
    skip token-by-token streaming (cheaper), but still emits the text as
    :class:`TokenDelta` events (possibly one per model call).

    ``memories``: facts the user stated in earlier conversations, recalled for this turn; the
    agent shows them to the model (within its context budget) and keeps them out of the
    conversation's own memory.
    """

    conversation_id: UUID
    user_id: UUID
    content: str
    stream_tokens: bool = True
    memories: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class AgentResume:
    """The user's ``decision`` about the tool call a conversation's agent paused on; ``memories``
    as for :class:`AgentTurn`."""

    conversation_id: UUID
    user_id: UUID
    decision: ApprovalDecision
    stream_tokens: bool = True
    memories: tuple[str, ...] = ()


class ChatAgent(Protocol):
    """A conversational agent with its own memory, keyed by conversation.

    Contract:
    - ``run`` hands each event to ``emit`` as it happens, in order, and returns when the
      reply is complete; the reply text is the concatenation of the :class:`TokenDelta`
      texts; it raises :class:`AgentUnavailable` / :class:`AgentTimeout` on failure
      (after its own retries), and ``parley.ports.persistence.StorageUnavailable`` when
      the store of its memory cannot be reached;
    - ``emit`` is called synchronously and must not block (e.g. ``queue.put_nowait``):
      events go straight from the model's stream to the caller, with no task in between;
    - cancelling ``run`` stops generation promptly, including the upstream model request;
      ``run`` finishes its own clean-up before the cancellation completes;
    - ``run`` must not hold any database connection of the caller;
    - what a turn adds to the agent's memory is written when ``run`` ends (normally, by an
      error or by cancellation), before ``run`` returns or raises;
    - ``forget`` deletes everything remembered for a conversation (idempotent); it raises
      ``StorageUnavailable`` when the memory store cannot be reached;
    - a run may pause on a tool call that needs approval: its last event is
      :class:`ApprovalRequested`, emitted once the pause is remembered, and it returns;
      ``resume`` then applies the user's decision (run the call, run it with edited arguments,
      or tell the model it was rejected) and goes on as ``run`` does (it may pause again);
      a ``run`` of the paused conversation instead abandons the pause (the call is never made).
    """

    async def run(self, turn: AgentTurn, emit: EventSink) -> None: ...

    async def resume(self, resume: AgentResume, emit: EventSink) -> None: ...

    async def forget(self, conversation_id: UUID) -> None: ...
