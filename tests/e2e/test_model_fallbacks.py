"""LLM_FALLBACK_MODELS through the whole stack, against the local fake OpenAI-compatible server:
one server, two model names, scripted in order (the primary's attempts, then the fallback's)."""

from __future__ import annotations

import uuid

import pytest

from parley.adapters.outbound.langgraph.offline_model import OFFLINE_MODEL_NAME
from tests.e2e.conftest import AppFactory, signed_up
from tests.e2e.sse_client import parse_events
from tests.e2e.test_chat_api import CHAT, new_session
from tests.e2e.test_metrics import _samples, _value
from tests.fakes.openai_server import FakeOpenAIServer, FakeReply

pytestmark = pytest.mark.e2e

PRIMARY, FALLBACK = "primary-model", "fallback-model"
# The fake server reports this as the model that answered (real servers name a dated version).
FALLBACK_REPORTED = "fallback-model-2026-01-01"


def _llm(server: FakeOpenAIServer) -> dict[str, object]:
    return {
        "api_key": "test-key",
        "base_url": server.base_url,
        "model": PRIMARY,
        "fallback_models": f"openai:{FALLBACK}",
        "retry_attempts": 2,
        "retry_backoff_seconds": 0,
    }


async def test_after_the_primarys_retries_on_500s_the_fallback_answers_and_is_named(
    start_app: AppFactory,
) -> None:
    with FakeOpenAIServer() as server:
        server.script(
            FakeReply(status=500),
            FakeReply(status=503),
            FakeReply(text="From the fallback.", model=FALLBACK_REPORTED),
        )
        _, client = await start_app(llm=_llm(server))
        headers = await signed_up(client, f"fallback-{uuid.uuid4().hex[:8]}@example.com")
        session_id = (await new_session(client, headers))["id"]

        response = await client.post(
            f"{CHAT}/{session_id}/messages/stream", headers=headers, json={"content": "hello"}
        )
        metrics = _samples((await client.get("/metrics")).text)

    events = parse_events(response.text)
    assert events[-1][0] == "done", response.text
    done = events[-1][1]
    assert done["message"]["content"] == "From the fallback."
    assert done["model"] == FALLBACK_REPORTED
    assert [request.body["model"] for request in server.requests] == [PRIMARY, PRIMARY, FALLBACK]
    assert _value(metrics, "parley_llm_calls_total", model=FALLBACK_REPORTED) == 1
    assert _value(metrics, "parley_llm_calls_total", model=PRIMARY) == 0
    # Both failed attempts of the primary: one retried on it, one handed to the fallback.
    assert _value(metrics, "parley_llm_retries_total", model=PRIMARY, reason="server error (500)") == 1
    assert _value(metrics, "parley_llm_retries_total", model=PRIMARY, reason="server error (503)") == 1
    assert _value(metrics, "parley_llm_errors_total") == 0  # the turn did not fail
    assert _value(metrics, "parley_chat_turns_total", status="complete") == 1


async def test_a_400_does_not_fall_back(start_app: AppFactory) -> None:
    with FakeOpenAIServer(FakeReply(text="never reached")) as server:
        server.script(FakeReply(status=400))
        _, client = await start_app(llm=_llm(server))
        headers = await signed_up(client, f"no-fallback-{uuid.uuid4().hex[:8]}@example.com")
        session_id = (await new_session(client, headers))["id"]

        response = await client.post(
            f"{CHAT}/{session_id}/messages/stream", headers=headers, json={"content": "hello"}
        )
        metrics = _samples((await client.get("/metrics")).text)

    assert [name for name, _ in parse_events(response.text)] == ["message", "error"]
    assert [request.body["model"] for request in server.requests] == [PRIMARY]
    assert _value(metrics, "parley_llm_errors_total", model=PRIMARY, kind="AgentUnavailable") == 1
    assert _value(metrics, "parley_llm_retries_total") == 0


async def test_when_every_model_fails_the_turn_fails_naming_the_last_one(start_app: AppFactory) -> None:
    with FakeOpenAIServer(FakeReply(status=502)) as server:
        _, client = await start_app(llm=_llm(server))
        headers = await signed_up(client, f"all-down-{uuid.uuid4().hex[:8]}@example.com")
        session_id = (await new_session(client, headers))["id"]

        whole = await client.post(f"{CHAT}/{session_id}/messages", headers=headers, json={"content": "hi"})
        metrics = _samples((await client.get("/metrics")).text)

    assert whole.status_code == 502
    assert [request.body["model"] for request in server.requests] == [PRIMARY] * 2 + [FALLBACK] * 2
    assert _value(metrics, "parley_llm_retries_total", model=PRIMARY) == 2
    assert _value(metrics, "parley_llm_retries_total", model=FALLBACK) == 1
    assert _value(metrics, "parley_llm_errors_total", model=FALLBACK, kind="AgentUnavailable") == 1


async def test_offline_the_fallbacks_are_ignored_and_done_names_the_offline_model(
    start_app: AppFactory,
) -> None:
    _, client = await start_app(llm={"fallback_models": "anthropic:claude-x,ollama:llama3"})
    headers = await signed_up(client, f"offline-{uuid.uuid4().hex[:8]}@example.com")
    session_id = (await new_session(client, headers))["id"]

    response = await client.post(
        f"{CHAT}/{session_id}/messages/stream", headers=headers, json={"content": "hello"}
    )

    events = parse_events(response.text)
    assert events[-1][0] == "done"
    assert events[-1][1]["model"] == OFFLINE_MODEL_NAME
