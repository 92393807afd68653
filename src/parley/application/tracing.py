"""Fan-out of the ``Tracer`` port: one turn reported to several tracers (e.g. metrics + Langfuse).

Depends on the port only, so the use cases keep seeing a single ``Tracer``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from parley.ports.tracing import Tracer, TurnTrace

_log = logging.getLogger(__name__)


def _each(targets: Sequence[Any], method: str, **kwargs: Any) -> None:
    """Call ``method`` on every target in order; one failing never stops the next."""
    for target in targets:
        try:
            getattr(target, method)(**kwargs)
        except Exception as exc:  # a tracer broke its never-raise contract: contain it
            _log.warning("Tracer %s.%s failed (%s)", type(target).__name__, method, type(exc).__name__)


class CompositeTurnTrace:
    """Forwards every ``TurnTrace`` call to each child trace, in order."""

    def __init__(self, traces: Sequence[TurnTrace]) -> None:
        self._traces = tuple(traces)

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
        _each(
            self._traces,
            "generation",
            model=model,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            started_at=started_at,
            first_token_at=first_token_at,
            ended_at=ended_at,
            output=output,
        )

    def tool(self, *, name: str, arguments: dict[str, Any], result: str, at: datetime) -> None:
        _each(self._traces, "tool", name=name, arguments=arguments, result=result, at=at)

    def retry(self, *, model: str, attempt: int, reason: str) -> None:
        _each(self._traces, "retry", model=model, attempt=attempt, reason=reason)

    def error(self, *, kind: str, model: str | None) -> None:
        _each(self._traces, "error", kind=kind, model=model)

    def end(self, *, status: str, output: str, ended_at: datetime) -> None:
        _each(self._traces, "end", status=status, output=output, ended_at=ended_at)


class CompositeTracer:
    """A ``Tracer`` that reports every turn to each of ``tracers``.

    - calls reach the tracers in the given order;
    - a tracer that raises (against the port's contract) is logged and skipped:
      the others still get the call and the caller never sees the error;
    - ``aclose()`` closes all of them concurrently, so the slowest bounds the total.
    """

    def __init__(self, tracers: Sequence[Tracer]) -> None:
        self._tracers = tuple(tracers)

    def start_turn(
        self, *, user_id: UUID, conversation_id: UUID, input_text: str, streaming: bool, started_at: datetime
    ) -> CompositeTurnTrace:
        traces: list[TurnTrace] = []
        for tracer in self._tracers:
            try:
                traces.append(
                    tracer.start_turn(
                        user_id=user_id,
                        conversation_id=conversation_id,
                        input_text=input_text,
                        streaming=streaming,
                        started_at=started_at,
                    )
                )
            except Exception as exc:
                _log.warning("Tracer %s.start_turn failed (%s)", type(tracer).__name__, type(exc).__name__)
        return CompositeTurnTrace(traces)

    async def aclose(self) -> None:
        results = await asyncio.gather(*(t.aclose() for t in self._tracers), return_exceptions=True)
        for tracer, result in zip(self._tracers, results, strict=True):
            if isinstance(result, Exception):
                _log.warning("Tracer %s.aclose failed (%s)", type(tracer).__name__, type(result).__name__)
