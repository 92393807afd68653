"""``LangfuseTracer`` with the real Langfuse SDK, against a local stand-in for the Langfuse host.

What is asserted is what the host receives (decoded OTLP spans and raw requests),
after ``aclose()`` flushed it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from opentelemetry import trace as otel_trace
from tests.fakes.langfuse_server import OTLP_TRACES_PATH, FakeLangfuseServer, ReceivedSpan

from parley.adapters.outbound.langfuse import LangfuseTracer
from parley.ports.tracing import (
    ModelCalled,
    ModelRetried,
    ToolUsed,
    Tracer,
    TurnEnded,
    TurnFailed,
    TurnStarted,
)

pytestmark = pytest.mark.integration

T0 = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)
SECRET_QUESTION = "my secret question"
SECRET_REPLY = "the secret reply"
LEVEL = "langfuse.observation.level"
STATUS_MESSAGE = "langfuse.observation.status_message"
OBSERVATION_TYPE = "langfuse.observation.type"


@dataclass(frozen=True)
class Turn:
    user_id: UUID
    conversation_id: UUID


@pytest.fixture
def server() -> Iterator[FakeLangfuseServer]:
    with FakeLangfuseServer() as running:
        yield running


def _public_key() -> str:
    # A fresh key per tracer: the SDK keeps one client state per key and process.
    return f"pk-lf-{uuid.uuid4().hex}"


def _nanos(moment: datetime) -> int:
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1) * 1_000


def _failed_turn_with_everything(tracer: Tracer) -> Turn:
    """Two model calls, a tool call, a retry and an error, then the end, as failed."""
    turn_ids = Turn(user_id=uuid.uuid4(), conversation_id=uuid.uuid4())
    turn = tracer.start_turn(
        TurnStarted(
            user_id=turn_ids.user_id,
            conversation_id=turn_ids.conversation_id,
            input_text=SECRET_QUESTION,
            streaming=True,
            at=T0,
        )
    )
    turn.record(
        ModelCalled(
            model="gpt-4o-mini",
            prompt_tokens=12,
            completion_tokens=7,
            started_at=T0 + timedelta(milliseconds=10),
            first_token_at=T0 + timedelta(milliseconds=310),
            ended_at=T0 + timedelta(seconds=1),
            output="calling the weather tool",
        )
    )
    turn.record(
        ToolUsed(name="weather", arguments={"city": "Oslo"}, result="4°C, rain", at=T0 + timedelta(seconds=1))
    )
    turn.record(ModelRetried(model="gpt-4o", attempt=1, reason="rate_limited", at=T0 + timedelta(seconds=2)))
    turn.record(
        ModelCalled(
            model="gpt-4o",
            prompt_tokens=40,
            completion_tokens=3,
            started_at=T0 + timedelta(seconds=2),
            first_token_at=None,
            ended_at=T0 + timedelta(seconds=4),
            output=SECRET_REPLY,
        )
    )
    turn.record(TurnFailed(kind="AgentTimeout", model="gpt-4o", at=T0 + timedelta(seconds=5)))
    turn.record(TurnEnded(status="failed", output=SECRET_REPLY, at=T0 + timedelta(seconds=5)))
    return turn_ids


def _successful_turn(tracer: Tracer) -> None:
    turn = tracer.start_turn(
        TurnStarted(
            user_id=uuid.uuid4(), conversation_id=uuid.uuid4(), input_text="hi", streaming=False, at=T0
        )
    )
    turn.record(
        ModelCalled(
            model="gpt-4o-mini",
            prompt_tokens=3,
            completion_tokens=2,
            started_at=T0,
            first_token_at=None,
            ended_at=T0 + timedelta(seconds=1),
            output="hello",
        )
    )
    turn.record(TurnEnded(status="complete", output="hello", at=T0 + timedelta(seconds=1)))


def _only(spans: list[ReceivedSpan], name: str) -> ReceivedSpan:
    named = [span for span in spans if span.name == name]
    assert len(named) == 1, f"expected one span {name!r}, got {[s.name for s in spans]}"
    return named[0]


def _json_attribute(span: ReceivedSpan, key: str) -> Any:
    return json.loads(span.attributes[key])


async def test_a_failed_turn_arrives_as_one_trace_with_user_session_models_usage_and_errors(
    server: FakeLangfuseServer,
) -> None:
    tracer = LangfuseTracer(_public_key(), "sk-lf-test", server.url, release="1.2.3", environment="test")

    ids = _failed_turn_with_everything(tracer)
    await tracer.aclose()

    spans = server.spans
    root = _only(spans, "chat-turn")
    assert {span.trace_id for span in spans} == {root.trace_id}
    assert root.parent_span_id is None
    assert all(span.parent_span_id == root.span_id for span in spans if span is not root)
    for span in spans:
        assert span.attributes["user.id"] == str(ids.user_id)
        assert span.attributes["session.id"] == str(ids.conversation_id)
        assert span.attributes["langfuse.environment"] == "test"
        assert span.attributes["langfuse.release"] == "1.2.3"
    assert root.attributes[LEVEL] == "ERROR"
    assert "AgentTimeout" in root.attributes[STATUS_MESSAGE]
    assert root.attributes["langfuse.observation.input"] == SECRET_QUESTION
    assert root.attributes["langfuse.observation.output"] == SECRET_REPLY
    assert (root.start_time_ns, root.end_time_ns) == (_nanos(T0), _nanos(T0 + timedelta(seconds=5)))


async def test_each_model_call_is_a_generation_with_model_usage_latency_and_first_token(
    server: FakeLangfuseServer,
) -> None:
    tracer = LangfuseTracer(_public_key(), "sk-lf-test", server.url)

    _failed_turn_with_everything(tracer)
    await tracer.aclose()

    generations = [s for s in server.spans if s.attributes.get(OBSERVATION_TYPE) == "generation"]
    by_model = {span.attributes["langfuse.observation.model.name"]: span for span in generations}
    assert sorted(by_model) == ["gpt-4o", "gpt-4o-mini"]
    mini = by_model["gpt-4o-mini"]
    assert _json_attribute(mini, "langfuse.observation.usage_details") == {
        "input": 12,
        "output": 7,
        "total": 19,
    }
    assert _json_attribute(by_model["gpt-4o"], "langfuse.observation.usage_details")["total"] == 43
    assert mini.end_time_ns - mini.start_time_ns == 990_000_000
    first_token = datetime.fromisoformat(_json_attribute(mini, "langfuse.observation.completion_start_time"))
    assert first_token == T0 + timedelta(milliseconds=310)
    assert "langfuse.observation.completion_start_time" not in by_model["gpt-4o"].attributes


async def test_tool_calls_retries_and_errors_arrive_with_their_levels(server: FakeLangfuseServer) -> None:
    tracer = LangfuseTracer(_public_key(), "sk-lf-test", server.url)

    _failed_turn_with_everything(tracer)
    await tracer.aclose()

    spans = server.spans
    tool = _only(spans, "tool:weather")
    assert tool.attributes[OBSERVATION_TYPE] == "tool"
    assert _json_attribute(tool, "langfuse.observation.input") == {"city": "Oslo"}
    assert tool.attributes["langfuse.observation.output"] == "4°C, rain"
    retry = _only(spans, "retry")
    assert (retry.attributes[OBSERVATION_TYPE], retry.attributes[LEVEL]) == ("event", "WARNING")
    assert retry.attributes[STATUS_MESSAGE] == "rate_limited"
    error = _only(spans, "error")
    assert (error.attributes[LEVEL], error.attributes[STATUS_MESSAGE]) == ("ERROR", "AgentTimeout")
    assert error.status_code == 2  # OTLP STATUS_CODE_ERROR


async def test_a_successful_turn_is_not_marked_as_an_error(server: FakeLangfuseServer) -> None:
    tracer = LangfuseTracer(_public_key(), "sk-lf-test", server.url)

    _successful_turn(tracer)
    await tracer.aclose()

    root = _only(server.spans, "chat-turn")
    assert root.attributes.get(LEVEL, "DEFAULT") == "DEFAULT"
    assert root.status_code != 2


async def test_spans_are_sent_as_otlp_with_the_projects_basic_auth(server: FakeLangfuseServer) -> None:
    public_key = _public_key()
    tracer = LangfuseTracer(public_key, "sk-lf-test", server.url + "/")

    _successful_turn(tracer)
    await tracer.aclose()

    expected = "Basic " + base64.b64encode(f"{public_key}:sk-lf-test".encode()).decode()
    trace_posts = [r for r in server.requests if r.path == OTLP_TRACES_PATH]
    assert trace_posts
    assert all(request.headers["authorization"] == expected for request in trace_posts)


async def test_with_content_capture_off_no_message_body_leaves_the_process(
    server: FakeLangfuseServer,
) -> None:
    tracer = LangfuseTracer(_public_key(), "sk-lf-test", server.url, capture_content=False)

    _failed_turn_with_everything(tracer)
    await tracer.aclose()

    assert server.spans, "the turn was not sent at all"
    bodies = b"\n".join(request.body for request in server.requests)
    for secret in (SECRET_QUESTION, SECRET_REPLY, "Oslo", "4°C"):
        assert secret.encode() not in bodies
    models = {span.attributes.get("langfuse.observation.model.name") for span in server.spans}
    assert {"gpt-4o", "gpt-4o-mini"} <= models


async def test_constructing_and_closing_an_idle_tracer_contacts_nobody(server: FakeLangfuseServer) -> None:
    tracer = LangfuseTracer(_public_key(), "sk-lf-test", server.url)
    await tracer.aclose()

    assert server.requests == []


async def test_missing_keys_turn_tracing_off_without_sending_anything(server: FakeLangfuseServer) -> None:
    tracer = LangfuseTracer("", "", server.url)

    _failed_turn_with_everything(tracer)
    await tracer.aclose()

    assert server.requests == []


async def test_the_process_wide_opentelemetry_provider_is_left_alone(server: FakeLangfuseServer) -> None:
    before = otel_trace.get_tracer_provider()

    tracer = LangfuseTracer(_public_key(), "sk-lf-test", server.url)
    _successful_turn(tracer)
    await tracer.aclose()

    assert otel_trace.get_tracer_provider() is before


async def test_two_open_tracers_each_send_to_their_own_host() -> None:
    with FakeLangfuseServer() as first_host, FakeLangfuseServer() as second_host:
        first = LangfuseTracer(_public_key(), "sk-lf-test", first_host.url)
        second = LangfuseTracer(_public_key(), "sk-lf-test", second_host.url)

        first_ids = _failed_turn_with_everything(first)
        second_ids = _failed_turn_with_everything(second)
        await asyncio.gather(first.aclose(), second.aclose())

    assert {s.attributes["user.id"] for s in first_host.spans} == {str(first_ids.user_id)}
    assert {s.attributes["user.id"] for s in second_host.spans} == {str(second_ids.user_id)}


async def test_a_tracer_reusing_a_closed_tracers_key_sends_to_its_own_host() -> None:
    public_key = _public_key()
    with FakeLangfuseServer() as old_host, FakeLangfuseServer() as new_host:
        old = LangfuseTracer(public_key, "sk-lf-test", old_host.url)
        _successful_turn(old)
        await old.aclose()

        new = LangfuseTracer(public_key, "sk-lf-test", new_host.url)
        ids = _failed_turn_with_everything(new)
        await new.aclose()

    assert {s.attributes["user.id"] for s in new_host.spans} == {str(ids.user_id)}
    assert str(ids.user_id) not in {s.attributes["user.id"] for s in old_host.spans}


async def test_an_unreachable_host_neither_fails_nor_slows_a_turn() -> None:
    tracer = LangfuseTracer(
        _public_key(), "sk-lf-test", "http://127.0.0.1:1", flush_timeout=1.0, request_timeout=1
    )

    started = time.monotonic()
    _failed_turn_with_everything(tracer)
    turn_seconds = time.monotonic() - started
    await asyncio.wait_for(tracer.aclose(), timeout=4.0)

    assert turn_seconds < 0.5


async def test_a_slow_host_neither_slows_a_turn_nor_holds_aclose_past_its_timeout() -> None:
    with FakeLangfuseServer(response_delay=3.0) as slow_host:
        tracer = LangfuseTracer(
            _public_key(), "sk-lf-test", slow_host.url, flush_timeout=0.5, request_timeout=1
        )

        started = time.monotonic()
        _failed_turn_with_everything(tracer)
        turn_seconds = time.monotonic() - started
        closing = time.monotonic()
        await tracer.aclose()
        close_seconds = time.monotonic() - closing

    assert turn_seconds < 0.5
    assert close_seconds < 1.5
