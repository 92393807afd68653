"""The tracer used when no tracing backend is configured."""

from __future__ import annotations

from parley.ports.tracing import TraceEvent, TraceLink, TurnStarted


class NoopTurnTrace:
    """A turn trace that drops everything."""

    @property
    def link(self) -> TraceLink | None:
        return None

    def record(self, event: TraceEvent) -> None:
        return None


# One shared instance: it holds no state, so turns need not allocate their own.
_NOOP_TURN = NoopTurnTrace()


class NoopTracer:
    """``Tracer`` that records nothing (used when Langfuse keys are missing).

    Contract: costs one attribute lookup per call, never raises, never does I/O.
    """

    def start_turn(self, started: TurnStarted) -> NoopTurnTrace:
        return _NOOP_TURN

    async def aclose(self) -> None:
        return None
