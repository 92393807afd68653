"""``CompositeTracer``: one turn reported to several tracers, one broken tracer contained."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from parley.application.tracing import CompositeTracer
from parley.ports.tracing import (
    ModelCalled,
    ModelRetried,
    ToolUsed,
    TraceEvent,
    TurnEnded,
    TurnFailed,
    TurnStarted,
    TurnTrace,
)
from tests.fakes.tracing import RecordingTracer

pytestmark = pytest.mark.unit

T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


class _BrokenTracer:
    """Breaks the port's never-raise contract on every call."""

    def start_turn(self, started: TurnStarted) -> TurnTrace:
        raise RuntimeError("cannot start")

    async def aclose(self) -> None:
        raise RuntimeError("cannot close")


class _BrokenTurn:
    def record(self, event: TraceEvent) -> None:
        raise RuntimeError(type(event).__name__)


class _TracerWithBrokenTurns(RecordingTracer):
    def start_turn(self, started: TurnStarted) -> Any:
        return _BrokenTurn()


def _report_a_turn(tracer: CompositeTracer) -> None:
    turn = tracer.start_turn(
        TurnStarted(
            user_id=uuid.uuid4(), conversation_id=uuid.uuid4(), input_text="hi", streaming=True, at=T0
        )
    )
    turn.record(
        ModelCalled(
            model="m",
            prompt_tokens=1,
            completion_tokens=2,
            started_at=T0,
            first_token_at=None,
            ended_at=T0,
            output="hello",
        )
    )
    turn.record(ToolUsed(name="calculator", arguments={}, result="2", at=T0))
    turn.record(ModelRetried(model="m", attempt=1, reason="timeout", at=T0))
    turn.record(TurnFailed(kind="AgentTimeout", model="m", at=T0))
    turn.record(TurnEnded(status="failed", output="hello", at=T0))


def test_every_tracer_gets_every_event() -> None:
    first, second = RecordingTracer(), RecordingTracer()

    _report_a_turn(CompositeTracer([first, second]))

    for recorder in (first, second):
        turn = recorder.last_turn
        assert [g.model for g in turn.model_calls] == ["m"]
        assert [t.name for t in turn.tools] == ["calculator"]
        assert turn.ended is not None
        assert turn.ended.status == "failed"


def test_a_tracer_that_raises_does_not_stop_the_others_or_the_caller() -> None:
    healthy = RecordingTracer()

    _report_a_turn(CompositeTracer([_BrokenTracer(), _TracerWithBrokenTurns(), healthy]))

    turn = healthy.last_turn
    assert [g.completion_tokens for g in turn.model_calls] == [2]
    assert turn.ended is not None
    assert turn.ended.status == "failed"


async def test_aclose_closes_every_tracer_even_when_one_fails() -> None:
    healthy = RecordingTracer()

    await CompositeTracer([_BrokenTracer(), healthy]).aclose()

    assert healthy.closed
