"""LangGraphChatAgent + the real ChatOpenAI client against a fake OpenAI server over HTTP.

Checkpoints go to a real PostgreSQL (one database for the module); every test uses
its own conversation id, so threads never mix.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from langchain_core.messages import convert_to_messages
from langchain_core.messages.utils import count_tokens_approximately
from tests.agent_runs import RunningTurn, collect
from tests.fakes.openai_server import FAKE_MODEL, FakeOpenAIServer, FakeReply, FakeToolCall

from parley.adapters.outbound.langgraph import AgentLimits, LangGraphChatAgent, ModelConfig
from parley.ports.agent import (
    AgentEvent,
    AgentTimeout,
    AgentTurn,
    AgentUnavailable,
    ModelRetry,
    TokenDelta,
    ToolCall,
    Usage,
)

pytestmark = pytest.mark.integration

CONFIGURED_MODEL = "gpt-4o-mini"
USER = uuid4()


@pytest.fixture(scope="module")
def fake_openai() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as server:
        yield server


@pytest.fixture(autouse=True)
def _fresh_server(fake_openai: FakeOpenAIServer) -> None:
    fake_openai.reset()


@pytest.fixture(scope="module")
def database_url(create_database: Callable[[], str]) -> str:
    return create_database()


def make_agent(database_url: str, server: FakeOpenAIServer, **limits: Any) -> LangGraphChatAgent:
    model = ModelConfig(
        name=CONFIGURED_MODEL, api_key="test-key", base_url=server.base_url, request_timeout=5
    )
    settings: dict[str, Any] = {"backoff_base": 0.01, "turn_timeout": 5.0, **limits}
    return LangGraphChatAgent(postgres_url=database_url, model=model, limits=AgentLimits(**settings))


@pytest.fixture
async def agent(database_url: str, fake_openai: FakeOpenAIServer) -> AsyncIterator[LangGraphChatAgent]:
    async with make_agent(database_url, fake_openai) as started:
        yield started


def turn(content: str, conversation_id: UUID | None = None) -> AgentTurn:
    return AgentTurn(conversation_id=conversation_id or uuid4(), user_id=USER, content=content)


def text_of(events: list[AgentEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TokenDelta))


async def test_streams_the_reply_token_by_token_then_reports_the_providers_usage(
    agent: LangGraphChatAgent, fake_openai: FakeOpenAIServer
) -> None:
    events = await collect(agent, turn("hello"))

    assert text_of(events) == "Hello from the fake model."
    assert sum(isinstance(e, TokenDelta) for e in events) == 5
    usage = events[-1]
    assert isinstance(usage, Usage)
    assert (usage.model, usage.completion_tokens) == (FAKE_MODEL, 5)
    assert usage.prompt_tokens > 0
    request = fake_openai.requests[-1].body
    assert request["model"] == CONFIGURED_MODEL
    assert request["stream"] is True
    assert request["stream_options"] == {"include_usage": True}
    assert request["temperature"] == 0.2
    assert request["max_completion_tokens"] == 2000
    assert [m["role"] for m in request["messages"]] == ["system", "user"]
    assert request["messages"][-1]["content"] == "hello"
    # The tools are offered with their JSON schemas (sent through extra_body: same wire format).
    tools = {tool["function"]["name"]: tool for tool in request["tools"]}
    assert set(tools) == {"calculator", "current_time"}
    assert tools["calculator"]["type"] == "function"
    assert "expression" in tools["calculator"]["function"]["parameters"]["properties"]


async def test_a_tool_call_runs_the_tool_and_feeds_its_result_back_to_the_model(
    agent: LangGraphChatAgent, fake_openai: FakeOpenAIServer
) -> None:
    fake_openai.script(
        FakeReply(tool_call=FakeToolCall("calculator", {"expression": "2+3*4"}, call_id="call_42")),
        FakeReply(text="It is 14."),
    )

    events = await collect(agent, turn("what is 2+3*4?"))

    assert ToolCall("calculator", {"expression": "2+3*4"}, "14") in events
    assert text_of(events) == "It is 14."
    assert sum(isinstance(e, Usage) for e in events) == 2
    tool_message = fake_openai.requests[-1].messages[-1]
    assert tool_message == {"role": "tool", "tool_call_id": "call_42", "content": "14"}


async def test_a_rate_limit_is_announced_then_retried(
    agent: LangGraphChatAgent, fake_openai: FakeOpenAIServer
) -> None:
    fake_openai.fail_first(1, 429)

    events = await collect(agent, turn("hello"))

    retry = events[0]
    assert isinstance(retry, ModelRetry)
    assert (retry.attempt, retry.model) == (1, CONFIGURED_MODEL)
    assert "429" in retry.reason
    assert text_of(events) == "Hello from the fake model."
    assert len(fake_openai.requests) == 2


async def test_server_errors_on_every_attempt_make_the_agent_unavailable(
    agent: LangGraphChatAgent, fake_openai: FakeOpenAIServer
) -> None:
    fake_openai.fail_first(3, 500)
    events: list[AgentEvent] = []

    with pytest.raises(AgentUnavailable) as raised:
        await collect(agent, turn("hello"), into=events)

    assert [e.attempt for e in events if isinstance(e, ModelRetry)] == [1, 2]
    assert len(fake_openai.requests) == 3
    assert raised.value.model == CONFIGURED_MODEL


async def test_a_bad_request_fails_at_once_without_retrying(
    agent: LangGraphChatAgent, fake_openai: FakeOpenAIServer
) -> None:
    fake_openai.fail_first(1, 400)
    events: list[AgentEvent] = []

    with pytest.raises(AgentUnavailable):
        await collect(agent, turn("hello"), into=events)

    assert events == []
    assert len(fake_openai.requests) == 1


async def test_a_connection_dropped_before_any_text_is_retried(
    agent: LangGraphChatAgent, fake_openai: FakeOpenAIServer
) -> None:
    fake_openai.script(FakeReply(break_after=1))  # only the empty role chunk gets out

    events = await collect(agent, turn("hello"))

    assert isinstance(events[0], ModelRetry)
    assert events[0].reason == "connection failed"
    assert text_of(events) == "Hello from the fake model."


async def test_a_failure_after_text_was_streamed_is_not_retried(
    agent: LangGraphChatAgent, fake_openai: FakeOpenAIServer
) -> None:
    fake_openai.script(FakeReply(text="one two three four", break_after=3))
    events: list[AgentEvent] = []

    with pytest.raises(AgentUnavailable):
        await collect(agent, turn("hello"), into=events)

    assert text_of(events) == "one two"
    assert not any(isinstance(e, ModelRetry) for e in events)
    assert len(fake_openai.requests) == 1


async def test_a_hanging_model_times_the_turn_out_and_drops_the_request(
    database_url: str, fake_openai: FakeOpenAIServer
) -> None:
    fake_openai.script(FakeReply(hang=True))
    # The turn's budget must outlast setting the turn up on a busy machine: with 0.5 s the model
    # request sometimes had not even been sent when the budget ran out (nothing to drop).
    async with make_agent(database_url, fake_openai, turn_timeout=2.0) as agent:
        with pytest.raises(AgentTimeout):
            await collect(agent, turn("hello"))

    assert fake_openai.requests, "the model request was never sent"
    assert await fake_openai.wait_for_disconnect(timeout=1.0)


async def test_cancelling_the_run_mid_reply_closes_the_upstream_request(
    agent: LangGraphChatAgent, fake_openai: FakeOpenAIServer
) -> None:
    fake_openai.script(FakeReply(text="one two three four", stall_after=3))
    tasks_before = asyncio.all_tasks()
    running = RunningTurn(agent, turn("hello"))

    first = await running.first_text()
    await running.cancel()

    assert first == TokenDelta("one")
    assert await fake_openai.wait_for_disconnect(timeout=1.0)
    assert asyncio.all_tasks() - tasks_before == set()


async def test_the_context_sent_to_the_model_is_trimmed_to_the_token_budget(
    database_url: str, fake_openai: FakeOpenAIServer
) -> None:
    conversation = uuid4()
    async with make_agent(database_url, fake_openai, context_tokens=300) as agent:
        for index in range(6):
            await collect(agent, turn(f"message {index}: " + "blah " * 60, conversation))

    sent = convert_to_messages(fake_openai.requests[-1].messages)
    assert count_tokens_approximately(sent) <= 300
    assert sent[0].type == "system"
    assert sent[-1].text.startswith("message 5: ")
    assert sum(m.type == "human" for m in sent) < 6


async def test_a_new_agent_on_the_same_database_remembers_earlier_turns(
    database_url: str, fake_openai: FakeOpenAIServer
) -> None:
    conversation = uuid4()
    async with make_agent(database_url, fake_openai) as first:
        await collect(first, turn("My name is Ada.", conversation))

    async with make_agent(database_url, fake_openai) as restarted:
        await collect(restarted, turn("What is my name?", conversation))

    sent = fake_openai.requests[-1].messages
    assert [(m["role"], m["content"]) for m in sent[1:]] == [
        ("user", "My name is Ada."),
        ("assistant", "Hello from the fake model."),
        ("user", "What is my name?"),
    ]


async def test_forget_deletes_the_threads_checkpoints_and_only_those(
    agent: LangGraphChatAgent, database_url: str, fake_openai: FakeOpenAIServer
) -> None:
    forgotten, kept = uuid4(), uuid4()
    await collect(agent, turn("remember me", forgotten))
    await collect(agent, turn("keep me", kept))

    await agent.forget(forgotten)
    await agent.forget(forgotten)  # idempotent

    assert checkpoint_rows(database_url, forgotten) == 0
    assert checkpoint_rows(database_url, kept) > 0
    await collect(agent, turn("who am I?", forgotten))
    assert [m["role"] for m in fake_openai.requests[-1].messages] == ["system", "user"]


def checkpoint_rows(database_url: str, conversation_id: UUID) -> int:
    with psycopg.connect(database_url) as conn:
        counts = [
            conn.execute(
                f"SELECT count(*) FROM {table} WHERE thread_id = %s", (str(conversation_id),)
            ).fetchone()
            for table in ("checkpoints", "checkpoint_blobs", "checkpoint_writes")
        ]
    return sum(row[0] for row in counts if row is not None)


async def test_forget_right_after_a_cancelled_turn_leaves_no_rows(
    agent: LangGraphChatAgent, database_url: str, fake_openai: FakeOpenAIServer
) -> None:
    conversation = uuid4()
    fake_openai.script(FakeReply(text="one two three four", stall_after=3))
    running = RunningTurn(agent, turn("hello", conversation))
    await running.first_text()
    await running.cancel()

    await agent.forget(conversation)

    assert checkpoint_rows(database_url, conversation) == 0


async def test_an_endless_tool_loop_is_cut_and_the_conversation_stays_usable(
    database_url: str, fake_openai: FakeOpenAIServer
) -> None:
    conversation = uuid4()
    looping = FakeReply(tool_call=FakeToolCall("calculator", {"expression": "1+1"}))
    fake_openai.script(*[looping] * 10)
    async with make_agent(database_url, fake_openai, recursion_limit=3) as agent:
        with pytest.raises(AgentUnavailable, match="step limit"):
            await collect(agent, turn("loop forever", conversation))
        fake_openai.reset()

        events = await collect(agent, turn("are you there?", conversation))

    assert text_of(events) == "Hello from the fake model."
