"""What one turn said and cost, and how it is reported to the tracer.

:class:`TurnObserver` watches a turn's agent events as they pass by and keeps the
bookkeeping that tracing and storing need, so the turn itself only relays events:

- the reply text (the concatenated :class:`TokenDelta` texts) and the token totals;
- each model call's own span: it starts when the previous call ended (or the turn began)
  and ends with the call's :class:`Usage` event; its first token is timed on the way;
- the tracer is handed one typed event per model call, tool call, retry and failure, and
  exactly one :class:`TurnEnded` (later reports are ignored).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from parley.domain.chat import MessageStatus
from parley.ports.agent import AgentError, AgentEvent, ModelRetry, TokenDelta, ToolCall, Usage
from parley.ports.system import Clock
from parley.ports.tracing import (
    ModelCalled,
    ModelRetried,
    ToolUsed,
    TraceLink,
    Tracer,
    TurnEnded,
    TurnFailed,
    TurnStarted,
)


class TurnObserver:
    """The running account of one turn; see the module docstring."""

    def __init__(self, tracer: Tracer, clock: Clock, started: TurnStarted) -> None:
        self._clock = clock
        self._trace = tracer.start_turn(started)
        self._parts: list[str] = []
        self._call_started_at = started.at
        self._call_first_token_at: datetime | None = None
        self._call_first_part = 0  # the current model call's text is self._parts[this:]
        self._ended = False
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.model: str | None = None  # the model that answered last (a fallback, maybe)

    @property
    def link(self) -> TraceLink | None:
        """Where the tracer keeps this turn's trace (None: it keeps none)."""
        return self._trace.link

    @property
    def text(self) -> str:
        """The reply so far."""
        return "".join(self._parts)

    def saw(self, event: AgentEvent) -> None:
        """Account for one agent event, in the order the agent emitted them."""
        match event:
            case TokenDelta(text=text):
                self._call_first_token_at = self._call_first_token_at or self._clock.now()
                self._parts.append(text)
            case ToolCall(name=name, arguments=arguments, result=result):
                # A copy of the arguments: the trace must not change if the caller's dict does.
                at = self._clock.now()
                self._trace.record(ToolUsed(name=name, arguments=dict(arguments), result=result, at=at))
            case ModelRetry(model=model, attempt=attempt, reason=reason, fallback=fallback):
                at = self._clock.now()
                retried = ModelRetried(model=model, attempt=attempt, reason=reason, at=at, fallback=fallback)
                self._trace.record(retried)
            case Usage():
                self._model_called(event)

    def failed(self, error: Exception) -> None:
        """The turn met ``error`` (an agent error names the model that failed)."""
        model = error.model if isinstance(error, AgentError) else None
        self._trace.record(TurnFailed(kind=type(error).__name__, model=model, at=self._clock.now()))

    def ended(self, status: MessageStatus | Literal["awaiting_approval"], at: datetime) -> None:
        """The turn is over, its reply stored (or not) with ``status``, or paused for the user's
        approval of a tool call; reported once."""
        if not self._ended:
            self._ended = True
            self._trace.record(TurnEnded(status=str(status), output=self.text, at=at))

    def _model_called(self, usage: Usage) -> None:
        now = self._clock.now()
        self.prompt_tokens += usage.prompt_tokens
        self.completion_tokens += usage.completion_tokens
        self.model = usage.model
        self._trace.record(
            ModelCalled(
                model=usage.model,
                prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.completion_tokens,
                started_at=self._call_started_at,
                first_token_at=self._call_first_token_at,
                ended_at=now,
                output="".join(self._parts[self._call_first_part :]),
            )
        )
        self._call_started_at, self._call_first_token_at = now, None
        self._call_first_part = len(self._parts)
