"""``PrometheusTracer``: what one chat turn leaves in the metrics, on a private registry."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry

from parley.adapters.outbound.prometheus import PrometheusTracer, PrometheusTurnTrace
from parley.ports.tracing import ModelCalled, ModelRetried, ToolUsed, TurnEnded, TurnFailed, TurnStarted

pytestmark = pytest.mark.unit

T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
MODEL = "gpt-4o-mini"


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


def _start(tracer: PrometheusTracer) -> PrometheusTurnTrace:
    return tracer.start_turn(
        TurnStarted(
            user_id=uuid.uuid4(), conversation_id=uuid.uuid4(), input_text="hi", streaming=True, at=T0
        )
    )


def _value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def _generation(turn: PrometheusTurnTrace, *, model: str = MODEL, first_token_ms: int | None = 300) -> None:
    turn.record(
        ModelCalled(
            model=model,
            prompt_tokens=12,
            completion_tokens=7,
            started_at=T0,
            first_token_at=T0 + timedelta(milliseconds=first_token_ms)
            if first_token_ms is not None
            else None,
            ended_at=T0 + timedelta(seconds=2),
            output="Hello!",
        )
    )


def test_a_model_call_is_counted_timed_and_its_tokens_added_under_its_model(
    registry: CollectorRegistry,
) -> None:
    turn = _start(PrometheusTracer(registry=registry))

    _generation(turn)
    _generation(turn)

    assert _value(registry, "parley_llm_calls_total", model=MODEL) == 2
    assert _value(registry, "parley_llm_call_duration_seconds_sum", model=MODEL) == pytest.approx(4.0)
    assert _value(registry, "parley_llm_call_duration_seconds_bucket", model=MODEL, le="2.5") == 2
    assert _value(registry, "parley_llm_time_to_first_token_seconds_sum", model=MODEL) == pytest.approx(0.6)
    assert _value(registry, "parley_llm_tokens_total", model=MODEL, kind="prompt") == 24
    assert _value(registry, "parley_llm_tokens_total", model=MODEL, kind="completion") == 14


def test_a_call_without_text_has_no_time_to_first_token(registry: CollectorRegistry) -> None:
    turn = _start(PrometheusTracer(registry=registry))

    _generation(turn, first_token_ms=None)

    assert _value(registry, "parley_llm_calls_total", model=MODEL) == 1
    assert _value(registry, "parley_llm_time_to_first_token_seconds_count", model=MODEL) is None


def test_each_model_that_answered_gets_its_own_series(registry: CollectorRegistry) -> None:
    turn = _start(PrometheusTracer(registry=registry))

    _generation(turn, model="primary")
    _generation(turn, model="fallback")

    assert _value(registry, "parley_llm_calls_total", model="primary") == 1
    assert _value(registry, "parley_llm_calls_total", model="fallback") == 1


def test_retries_errors_and_tools_are_counted_with_their_labels(registry: CollectorRegistry) -> None:
    turn = _start(PrometheusTracer(registry=registry))

    turn.record(ModelRetried(model=MODEL, attempt=1, reason="rate_limited", at=T0))
    turn.record(ModelRetried(model=MODEL, attempt=2, reason="rate_limited", at=T0))
    turn.record(ToolUsed(name="calculator", arguments={"expression": "1+1"}, result="2", at=T0))
    turn.record(TurnFailed(kind="AgentTimeout", model=MODEL, at=T0))
    turn.record(TurnFailed(kind="AgentUnavailable", model=None, at=T0))

    assert _value(registry, "parley_llm_retries_total", model=MODEL, reason="rate_limited") == 2
    assert _value(registry, "parley_llm_tool_calls_total", tool="calculator") == 1
    assert _value(registry, "parley_llm_errors_total", model=MODEL, kind="AgentTimeout") == 1
    assert _value(registry, "parley_llm_errors_total", model="unknown", kind="AgentUnavailable") == 1


def test_a_turn_is_an_active_stream_until_it_ends_and_counts_once(registry: CollectorRegistry) -> None:
    tracer = PrometheusTracer(registry=registry)
    first, second = _start(tracer), _start(tracer)
    assert _value(registry, "parley_llm_active_streams") == 2

    first.record(TurnEnded(status="complete", output="ok", at=T0))
    first.record(TurnEnded(status="complete", output="ok", at=T0))

    assert _value(registry, "parley_llm_active_streams") == 1
    assert _value(registry, "parley_chat_turns_total", status="complete") == 1
    second.record(TurnEnded(status="incomplete", output="", at=T0))
    assert _value(registry, "parley_llm_active_streams") == 0
    assert _value(registry, "parley_chat_turns_total", status="incomplete") == 1


def test_odd_inputs_are_dropped_or_clamped_never_raised(registry: CollectorRegistry) -> None:
    turn = _start(PrometheusTracer(registry=registry))
    naive = datetime(2025, 1, 1, 12, 0)

    turn.record(  # naive and aware datetimes cannot be subtracted: the sample is dropped
        ModelCalled(
            model=MODEL,
            prompt_tokens=1,
            completion_tokens=1,
            started_at=naive,
            first_token_at=None,
            ended_at=T0,
            output="",
        )
    )
    turn.record(  # ends before it starts, negative usage
        ModelCalled(
            model="m" * 10_000,
            prompt_tokens=-5,
            completion_tokens=-1,
            started_at=T0 + timedelta(hours=1),
            first_token_at=T0,
            ended_at=T0,
            output="",
        )
    )

    long_model = "m" * 100
    assert _value(registry, "parley_llm_call_duration_seconds_sum", model=long_model) == 0.0
    assert _value(registry, "parley_llm_time_to_first_token_seconds_sum", model=long_model) == 0.0
    assert _value(registry, "parley_llm_tokens_total", model=long_model, kind="prompt") == 0.0


def test_tracers_on_separate_registries_do_not_share_values() -> None:
    one, other = CollectorRegistry(), CollectorRegistry()
    _generation(_start(PrometheusTracer(registry=one)))

    PrometheusTracer(registry=other)

    assert _value(one, "parley_llm_calls_total", model=MODEL) == 1
    assert _value(other, "parley_llm_calls_total", model=MODEL) is None


async def test_aclose_returns_and_later_turns_are_still_counted(registry: CollectorRegistry) -> None:
    tracer = PrometheusTracer(registry=registry)

    await tracer.aclose()
    _generation(_start(tracer))

    assert _value(registry, "parley_llm_calls_total", model=MODEL) == 1
