"""In-memory double of the ``Tracer`` port, for use-case unit tests.

``RecordingTracer`` keeps every turn it was asked to start, and each turn keeps
what it was told, in order, so tests can assert on what a use case reported:

    tracer = RecordingTracer()
    ...  # run the use case with it
    turn = tracer.last_turn
    assert [g.model for g in turn.generations] == ["gpt-4o-mini"]
    assert turn.ended is not None and turn.ended.status == "ok"

Like every tracer it never raises, even when called after ``end()`` or
``aclose()``: those calls are still recorded (and counted in
``calls_after_end``) so a test can assert that a use case does not make them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID


@dataclass(frozen=True)
class RecordedGeneration:
    model: str
    prompt_tokens: int
    completion_tokens: int
    started_at: datetime
    first_token_at: datetime | None
    ended_at: datetime
    output: str


@dataclass(frozen=True)
class RecordedTool:
    name: str
    arguments: dict[str, Any]
    result: str
    at: datetime


@dataclass(frozen=True)
class RecordedRetry:
    model: str
    attempt: int
    reason: str


@dataclass(frozen=True)
class RecordedError:
    kind: str
    model: str | None


@dataclass(frozen=True)
class RecordedEnd:
    status: str
    output: str
    ended_at: datetime


RecordedCall = RecordedGeneration | RecordedTool | RecordedRetry | RecordedError | RecordedEnd


@dataclass
class RecordingTurnTrace:
    """One recorded turn; ``calls`` holds every call in the order it was made."""

    user_id: UUID
    conversation_id: UUID
    input_text: str
    streaming: bool
    started_at: datetime
    calls: list[RecordedCall] = field(default_factory=list)
    calls_after_end: int = 0

    # --- the TurnTrace port -------------------------------------------------
    def generation(
        self,
        *,
        model: str,
        prompt_tokens: int,
        completion_tokens: int,
        started_at: datetime,
        first_token_at: datetime | None,
        ended_at: datetime,
        output: str,
    ) -> None:
        self._record(
            RecordedGeneration(
                model=model,
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                started_at=started_at,
                first_token_at=first_token_at,
                ended_at=ended_at,
                output=output,
            )
        )

    def tool(self, *, name: str, arguments: dict[str, Any], result: str, at: datetime) -> None:
        # Copy the arguments: the caller may mutate its dict after the call.
        self._record(RecordedTool(name=name, arguments=dict(arguments), result=result, at=at))

    def retry(self, *, model: str, attempt: int, reason: str) -> None:
        self._record(RecordedRetry(model=model, attempt=attempt, reason=reason))

    def error(self, *, kind: str, model: str | None) -> None:
        self._record(RecordedError(kind=kind, model=model))

    def end(self, *, status: str, output: str, ended_at: datetime) -> None:
        self._record(RecordedEnd(status=status, output=output, ended_at=ended_at))

    # --- views for assertions -------------------------------------------------
    @property
    def generations(self) -> list[RecordedGeneration]:
        return [c for c in self.calls if isinstance(c, RecordedGeneration)]

    @property
    def tools(self) -> list[RecordedTool]:
        return [c for c in self.calls if isinstance(c, RecordedTool)]

    @property
    def retries(self) -> list[RecordedRetry]:
        return [c for c in self.calls if isinstance(c, RecordedRetry)]

    @property
    def errors(self) -> list[RecordedError]:
        return [c for c in self.calls if isinstance(c, RecordedError)]

    @property
    def ended(self) -> RecordedEnd | None:
        """The first ``end()`` call, or ``None`` while the turn is open."""
        return next((c for c in self.calls if isinstance(c, RecordedEnd)), None)

    def _record(self, call: RecordedCall) -> None:
        if self.ended is not None:
            self.calls_after_end += 1
        self.calls.append(call)


class RecordingTracer:
    """A ``Tracer`` that records turns in memory; ``turns`` is in start order."""

    def __init__(self) -> None:
        self.turns: list[RecordingTurnTrace] = []
        self.closed = False

    def start_turn(
        self, *, user_id: UUID, conversation_id: UUID, input_text: str, streaming: bool, started_at: datetime
    ) -> RecordingTurnTrace:
        turn = RecordingTurnTrace(
            user_id=user_id,
            conversation_id=conversation_id,
            input_text=input_text,
            streaming=streaming,
            started_at=started_at,
        )
        self.turns.append(turn)
        return turn

    async def aclose(self) -> None:
        self.closed = True

    @property
    def last_turn(self) -> RecordingTurnTrace:
        """The most recently started turn; fails the test (AssertionError) when there is none."""
        assert self.turns, "no turn was started"
        return self.turns[-1]
