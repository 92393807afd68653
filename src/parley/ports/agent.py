"""The language-model agent port: streams typed events for one chat turn."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any, Protocol
from uuid import UUID


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
    """A retryable model failure; the adapter is about to try again."""

    attempt: int
    reason: str
    model: str


@dataclass(frozen=True, slots=True)
class Usage:
    """Emitted once per model call, after it completes, naming the model that answered."""

    model: str
    prompt_tokens: int
    completion_tokens: int


AgentEvent = TokenDelta | ToolCall | ModelRetry | Usage


@dataclass(frozen=True, slots=True)
class AgentTurn:
    """The new user message of one turn; the agent keeps the earlier turns itself.

    ``stream_tokens=False`` says the caller only wants the whole reply: the agent may
    skip token-by-token streaming (cheaper), but still yields the text as
    :class:`TokenDelta` events (possibly one per model call).
    """

    conversation_id: UUID
    user_id: UUID
    content: str
    stream_tokens: bool = True


class ChatAgent(Protocol):
    """A conversational agent with its own memory, keyed by conversation.

    Contract:
    - ``stream`` yields events in order; the reply text is the concatenation of its
      :class:`TokenDelta` texts; it raises :class:`AgentUnavailable` /
      :class:`AgentTimeout` on failure (after its own retries);
    - closing the iterator or cancelling the consuming task stops generation
      promptly, including the upstream model request;
    - ``stream`` must not hold any database connection of the caller;
    - ``forget`` deletes everything remembered for a conversation (idempotent).
    """

    def stream(self, turn: AgentTurn) -> AsyncGenerator[AgentEvent, None]: ...

    async def forget(self, conversation_id: UUID) -> None: ...
