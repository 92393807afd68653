"""Fan-out of the ``Tracer`` port: one turn reported to several tracers (e.g. metrics + Langfuse).

Depends on the port only, so the use cases keep seeing a single ``Tracer``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from parley.ports.tracing import TraceEvent, TraceLink, Tracer, TurnStarted, TurnTrace

_log = logging.getLogger(__name__)


class CompositeTurnTrace:
    """Hands every event to each child trace, in order; one failing never stops the next."""

    def __init__(self, traces: Sequence[TurnTrace]) -> None:
        self._traces = tuple(traces)

    @property
    def link(self) -> TraceLink | None:
        """The first child trace's link (at most one child, Langfuse, keeps per-turn traces)."""
        for trace in self._traces:
            try:
                link = trace.link
            except Exception as exc:  # contained like record(): tracing never raises into the caller
                _log.warning("Tracer trace %s.link failed (%s)", type(trace).__name__, type(exc).__name__)
                continue
            if link is not None:
                return link
        return None

    def record(self, event: TraceEvent) -> None:
        for trace in self._traces:
            try:
                trace.record(event)
            except Exception as exc:  # a tracer broke its never-raise contract: contain it
                _log.warning("Tracer %s.record failed (%s)", type(trace).__name__, type(exc).__name__)


class CompositeTracer:
    """A ``Tracer`` that reports every turn to each of ``tracers``.

    - calls reach the tracers in the given order;
    - a tracer that raises (against the port's contract) is logged and skipped:
      the others still get the call and the caller never sees the error;
    - ``aclose()`` closes all of them concurrently, so the slowest bounds the total.
    """

    def __init__(self, tracers: Sequence[Tracer]) -> None:
        self._tracers = tuple(tracers)

    def start_turn(self, started: TurnStarted) -> CompositeTurnTrace:
        traces: list[TurnTrace] = []
        for tracer in self._tracers:
            try:
                traces.append(tracer.start_turn(started))
            except Exception as exc:
                _log.warning("Tracer %s.start_turn failed (%s)", type(tracer).__name__, type(exc).__name__)
        return CompositeTurnTrace(traces)

    async def aclose(self) -> None:
        results = await asyncio.gather(*(t.aclose() for t in self._tracers), return_exceptions=True)
        for tracer, result in zip(self._tracers, results, strict=True):
            if isinstance(result, Exception):
                _log.warning("Tracer %s.aclose failed (%s)", type(tracer).__name__, type(result).__name__)
