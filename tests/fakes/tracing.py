"""In-memory double of the ``Tracer`` port, for use-case unit tests.

``RecordingTracer`` keeps every turn it was asked to start, and each turn keeps the
events it was handed, in order, so tests can assert on what a use case reported:

    tracer = RecordingTracer()
    ...  # run the use case with it
    turn = tracer.last_turn
    assert [g.model for g in turn.model_calls] == ["gpt-4o-mini"]
    assert turn.ended is not None and turn.ended.status == "complete"

Like every tracer it never raises, even when handed events after the end or after
``aclose()``: those are still recorded (and counted in ``events_after_end``) so a test
can assert that a use case does not send them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from parley.ports.tracing import (
    ModelCalled,
    ModelRetried,
    ToolUsed,
    TraceEvent,
    TraceLink,
    TurnEnded,
    TurnFailed,
    TurnStarted,
)


@dataclass
class RecordingTurnTrace:
    """One recorded turn; ``events`` holds every event in the order it came."""

    started: TurnStarted
    link: TraceLink | None = None
    events: list[TraceEvent] = field(default_factory=list)
    events_after_end: int = 0

    def record(self, event: TraceEvent) -> None:
        if self.ended is not None:
            self.events_after_end += 1
        self.events.append(event)

    # --- views for assertions -------------------------------------------------
    @property
    def model_calls(self) -> list[ModelCalled]:
        return [e for e in self.events if isinstance(e, ModelCalled)]

    @property
    def tools(self) -> list[ToolUsed]:
        return [e for e in self.events if isinstance(e, ToolUsed)]

    @property
    def retries(self) -> list[ModelRetried]:
        return [e for e in self.events if isinstance(e, ModelRetried)]

    @property
    def errors(self) -> list[TurnFailed]:
        return [e for e in self.events if isinstance(e, TurnFailed)]

    @property
    def ended(self) -> TurnEnded | None:
        """The first :class:`TurnEnded`, or ``None`` while the turn is open."""
        return next((e for e in self.events if isinstance(e, TurnEnded)), None)


class RecordingTracer:
    """A ``Tracer`` that records turns in memory; ``turns`` is in start order.

    ``linked=True`` stands in for a backend that keeps traces: turn ``n`` (from 1) gets the
    link ``trace-n`` (url ``https://traces.test/trace/trace-n``); otherwise links are None.
    """

    def __init__(self, *, linked: bool = False) -> None:
        self.turns: list[RecordingTurnTrace] = []
        self.closed = False
        self._linked = linked

    def start_turn(self, started: TurnStarted) -> RecordingTurnTrace:
        number = len(self.turns) + 1
        link = (
            TraceLink(f"trace-{number}", f"https://traces.test/trace/trace-{number}")
            if self._linked
            else None
        )
        turn = RecordingTurnTrace(started, link)
        self.turns.append(turn)
        return turn

    async def aclose(self) -> None:
        self.closed = True

    @property
    def last_turn(self) -> RecordingTurnTrace:
        """The most recently started turn; fails the test (AssertionError) when there is none."""
        assert self.turns, "no turn was started"
        return self.turns[-1]
