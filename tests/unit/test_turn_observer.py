"""``TurnObserver``: one turn's agent events become the reply text, usage and trace events."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

import pytest

from parley.application.chat.observer import TurnObserver
from parley.domain.chat import MessageStatus
from parley.ports.agent import AgentTimeout, ModelRetry, TokenDelta, ToolCall, Usage
from parley.ports.persistence import StorageUnavailable
from parley.ports.tracing import TurnStarted
from tests.fakes.system import FakeClock
from tests.fakes.tracing import RecordingTracer, RecordingTurnTrace

pytestmark = pytest.mark.unit


def _observe(clock: FakeClock) -> tuple[TurnObserver, RecordingTurnTrace]:
    tracer = RecordingTracer()
    started = TurnStarted(
        user_id=UUID(int=1), conversation_id=UUID(int=2), input_text="hi", streaming=True, at=clock.now()
    )
    return TurnObserver(tracer, clock, started), tracer.last_turn


def test_each_model_call_spans_from_the_previous_ones_end_to_its_usage_with_its_first_token() -> None:
    clock = FakeClock()
    t0 = clock.now()
    observer, trace = _observe(clock)

    clock.advance(timedelta(milliseconds=300))
    observer.saw(TokenDelta("Let me "))
    clock.advance(timedelta(milliseconds=200))
    observer.saw(TokenDelta("check."))
    observer.saw(Usage("model-a", 10, 2))
    t1 = clock.now()
    clock.advance(timedelta(seconds=1))
    observer.saw(ToolCall("calculator", {"expression": "2+2"}, "4"))
    observer.saw(Usage("model-a", 20, 0))  # a call that streamed no text
    t2 = clock.now()

    first, second = trace.model_calls
    assert (first.started_at, first.first_token_at, first.ended_at) == (
        t0,
        t0 + timedelta(milliseconds=300),
        t1,
    )
    assert first.output == "Let me check."
    assert (second.started_at, second.first_token_at, second.ended_at, second.output) == (t1, None, t2, "")
    assert [t.name for t in trace.tools] == ["calculator"]
    assert observer.text == "Let me check."
    assert (observer.prompt_tokens, observer.completion_tokens) == (30, 2)


def test_a_tool_calls_arguments_are_copied_into_the_trace() -> None:
    observer, trace = _observe(FakeClock())
    arguments = {"expression": "1+1"}

    observer.saw(ToolCall("calculator", arguments, "2"))
    arguments["expression"] = "changed"

    assert trace.tools[0].arguments == {"expression": "1+1"}


def test_failures_name_their_kind_and_the_model_when_the_agent_knows_it() -> None:
    observer, trace = _observe(FakeClock())

    observer.saw(ModelRetry(attempt=1, reason="rate_limited", model="model-a"))
    observer.failed(AgentTimeout("slow", model="model-a"))
    observer.failed(StorageUnavailable())

    assert [(r.model, r.attempt, r.reason) for r in trace.retries] == [("model-a", 1, "rate_limited")]
    assert [(e.kind, e.model) for e in trace.errors] == [
        ("AgentTimeout", "model-a"),
        ("StorageUnavailable", None),
    ]


def test_the_end_is_reported_once_with_the_reply_so_far() -> None:
    clock = FakeClock()
    observer, trace = _observe(clock)
    observer.saw(TokenDelta("partial"))

    observer.ended(MessageStatus.INCOMPLETE, clock.now())
    observer.ended(MessageStatus.FAILED, clock.now())

    assert trace.ended is not None
    assert (trace.ended.status, trace.ended.output) == ("incomplete", "partial")
    assert trace.events_after_end == 0
