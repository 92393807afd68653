"""Tracing port: observes chat turns as typed events (model calls, tool calls, retries, errors).

A tracer opens one :class:`TurnTrace` per turn (:meth:`Tracer.start_turn`) and is handed
that turn's :data:`TraceEvent` values, in the order things happened, ending with one
:class:`TurnEnded`. The application computes every value (times, usage, texts); a tracer
only translates them into its backend's shape.

Contract: implementations never raise into the caller and never block it on the network;
a tracer that cannot reach its backend drops data instead. Events after :class:`TurnEnded`
are ignored. A tracer that keeps one trace per turn in a backend (Langfuse) tells where it is
(:attr:`TurnTrace.link`), so others can refer to it (``parley eval`` scores it there).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID


@dataclass(frozen=True, slots=True, kw_only=True)
class TurnStarted:
    """A turn began: who asked, in which conversation, what, and whether the reply is streamed."""

    user_id: UUID
    conversation_id: UUID
    input_text: str
    streaming: bool
    at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelCalled:
    """One model call finished: the model that answered, its usage, its own start and end,
    the moment its first token arrived (None when it streamed none) and the text it produced."""

    model: str
    prompt_tokens: int
    completion_tokens: int
    started_at: datetime
    first_token_at: datetime | None
    ended_at: datetime
    output: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolUsed:
    """The agent called a tool (an instant: the port gives no duration)."""

    name: str
    arguments: dict[str, Any] = field(default_factory=dict)
    result: str
    at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelRetried:
    """A model call failed in a retryable way and is about to be tried again (by ``fallback``,
    the next model, when set)."""

    model: str
    attempt: int
    reason: str
    at: datetime
    fallback: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TurnFailed:
    """The turn met an error; ``kind`` is its class name, ``model`` the model that failed, if known."""

    kind: str
    model: str | None
    at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class TurnEnded:
    """The turn is over; ``status`` is the stored reply's status, ``output`` the reply text."""

    status: str
    output: str
    at: datetime


TraceEvent = ModelCalled | ToolUsed | ModelRetried | TurnFailed | TurnEnded


@dataclass(frozen=True, slots=True)
class TraceLink:
    """Where a backend keeps one turn's trace: its id there, and a page showing it (None
    when the backend has no page to link)."""

    trace_id: str
    url: str | None = None


class TurnTrace(Protocol):
    """One chat turn, as a tracer records it."""

    @property
    def link(self) -> TraceLink | None:
        """The turn's trace in the backend; None for a tracer that keeps no per-turn trace
        (metrics, no-op) or whose trace could not be opened. Known from the start, constant."""
        ...

    def record(self, event: TraceEvent) -> None:
        """Record ``event``; never raises, never blocks."""
        ...


class Tracer(Protocol):
    def start_turn(self, started: TurnStarted) -> TurnTrace:
        """Open the trace of one turn (a do-nothing trace when tracing is off or fails)."""
        ...

    async def aclose(self) -> None:
        """Flush what is buffered (bounded in time) and release resources."""
        ...
