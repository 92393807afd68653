"""Providers other than OpenAI (``LLM_MODEL=anthropic:...``, ``ollama:...``, built by LangChain's
``init_chat_model``) through the whole stack, against fakes of their APIs on 127.0.0.1: streamed
and whole replies, the requests they make, and a fallback to an OpenAI model when one fails."""

from __future__ import annotations

import uuid

import pytest

from tests.e2e.conftest import AppFactory, signed_up
from tests.e2e.sse_client import parse_events
from tests.e2e.test_chat_api import CHAT, new_session
from tests.fakes.anthropic_server import FAKE_CLAUDE, AnthropicReply, FakeAnthropicServer
from tests.fakes.ollama_server import FakeOllamaServer, OllamaReply
from tests.fakes.openai_server import FakeOpenAIServer, FakeReply

pytestmark = pytest.mark.e2e

pytest.importorskip("langchain_anthropic", reason="langchain-anthropic is not installed (uv sync)")


def _claude(server: FakeAnthropicServer, **more: object) -> dict[str, object]:
    return {
        "api_key": "claude-test-key",
        "base_url": server.base_url,
        "model": "anthropic:claude-x",
        "max_tokens": 321,
        "retry_attempts": 2,
        **more,
    }


async def test_a_claude_model_streams_its_reply_through_the_api(start_app: AppFactory) -> None:
    with FakeAnthropicServer() as server:
        server.script(AnthropicReply(text="Bonjour from Claude.", pieces=4))
        _, client = await start_app(llm=_claude(server))
        headers = await signed_up(client, f"claude-{uuid.uuid4().hex[:8]}@example.com")
        session_id = (await new_session(client, headers))["id"]

        response = await client.post(
            f"{CHAT}/{session_id}/messages/stream", headers=headers, json={"content": "Say hello in French"}
        )
        whole = await client.post(f"{CHAT}/{session_id}/messages", headers=headers, json={"content": "Again"})

    events = parse_events(response.text)
    names = [name for name, _ in events]
    assert (names[0], names[-1], names.count("token")) == ("message", "done", 4), response.text
    done = events[-1][1]
    assert done["message"]["content"] == "Bonjour from Claude."
    assert done["model"] == FAKE_CLAUDE  # the model the provider says answered
    assert done["usage"]["completion_tokens"] == 3
    assert whole.status_code == 200, whole.text
    assert whole.json()["reply"]["content"] == "Hello from the fake Claude."
    first, second = server.requests
    assert (first.path, first.api_key) == ("/v1/messages", "claude-test-key")
    assert (first.body["model"], first.body["max_tokens"], first.body["stream"]) == ("claude-x", 321, True)
    assert "Parley" in str(first.body["system"])  # the system prompt travels as Anthropic's field
    assert first.body["messages"][-1]["content"] == "Say hello in French"
    assert second.body.get("stream") in (None, False)  # a non-streamed send makes a whole request
    assert [m["role"] for m in second.body["messages"]] == ["user", "assistant", "user"]  # it remembers


async def test_after_claude_fails_an_openai_fallback_answers(
    start_app: AppFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """LLM_API_KEY/LLM_BASE_URL are the primary's; an OpenAI fallback reads OPENAI_* as the SDK does."""
    with FakeAnthropicServer() as claude, FakeOpenAIServer() as openai_server:
        claude.script(AnthropicReply(status=529), AnthropicReply(status=500))
        openai_server.script(FakeReply(text="From the OpenAI fallback.", model="fallback-model"))
        monkeypatch.setenv("OPENAI_API_KEY", "openai-test-key")
        monkeypatch.setenv("OPENAI_BASE_URL", openai_server.base_url)
        _, client = await start_app(llm=_claude(claude, fallback_models="openai:fallback-model"))
        headers = await signed_up(client, f"claude-down-{uuid.uuid4().hex[:8]}@example.com")
        session_id = (await new_session(client, headers))["id"]

        response = await client.post(
            f"{CHAT}/{session_id}/messages/stream", headers=headers, json={"content": "hello"}
        )

    events = parse_events(response.text)
    assert events[-1][0] == "done", response.text
    assert events[-1][1]["message"]["content"] == "From the OpenAI fallback."
    assert events[-1][1]["model"] == "fallback-model"
    assert len(claude.requests) == 2  # its two attempts, then the fallback
    assert [r.body["model"] for r in openai_server.requests] == ["fallback-model"]


async def test_an_ollama_model_streams_its_reply_through_the_api(start_app: AppFactory) -> None:
    pytest.importorskip("langchain_ollama", reason="langchain-ollama is not installed (uv sync)")
    with FakeOllamaServer() as server:
        server.script(OllamaReply(text="Hallo from Llama.", pieces=3))
        llm = {"api_key": "unused", "base_url": server.base_url, "model": "ollama:llama-x", "max_tokens": 123}
        _, client = await start_app(llm=llm)
        headers = await signed_up(client, f"llama-{uuid.uuid4().hex[:8]}@example.com")
        session_id = (await new_session(client, headers))["id"]

        response = await client.post(
            f"{CHAT}/{session_id}/messages/stream", headers=headers, json={"content": "Say hello in German"}
        )

    events = parse_events(response.text)
    names = [name for name, _ in events]
    assert (names[0], names[-1], names.count("token")) == ("message", "done", 3), response.text
    done = events[-1][1]
    assert done["message"]["content"] == "Hallo from Llama."
    assert done["usage"]["completion_tokens"] == 3
    [request] = server.requests
    assert (request["model"], request["options"]["num_predict"]) == ("llama-x", 123)
    assert request["messages"][0]["role"] == "system"
    assert request["messages"][-1]["content"] == "Say hello in German"
