"""The ChatAgent contract, run against the scripted double and the real LangGraph adapter.

Both subjects run in their deterministic echo mode (the scripted agent with an empty
script, the LangGraph agent with the offline model and PostgreSQL checkpoints): each
reply quotes the user's message and says how many earlier user messages the agent
remembers ("I remember N earlier user message(s)"), which makes memory observable
through the port alone.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from typing import cast
from uuid import UUID, uuid4

import pytest

from parley.adapters.outbound.langgraph import LangGraphChatAgent, ModelConfig
from parley.ports.agent import AgentEvent, AgentTurn, ChatAgent, TokenDelta, Usage
from tests.agent_runs import RunningTurn, collect
from tests.fakes.agent import ScriptedChatAgent

pytestmark = pytest.mark.contract

_REMEMBERED = re.compile(r"I remember (\d+) earlier user message")


@pytest.fixture(scope="module")
def database_url(create_database: Callable[[], str]) -> str:
    return create_database()


@pytest.fixture(params=["scripted", "langgraph"])
async def agent(request: pytest.FixtureRequest) -> AsyncIterator[ChatAgent]:
    if request.param == "scripted":
        yield ScriptedChatAgent()
        return
    database_url = cast(str, request.getfixturevalue("database_url"))
    async with LangGraphChatAgent(postgres_url=database_url, model=ModelConfig(api_key=None)) as real:
        yield real


def turn(conversation_id: UUID, content: str) -> AgentTurn:
    return AgentTurn(conversation_id=conversation_id, user_id=uuid4(), content=content)


async def events_of(agent: ChatAgent, conversation_id: UUID, content: str) -> list[AgentEvent]:
    return await collect(agent, turn(conversation_id, content))


async def reply_of(agent: ChatAgent, conversation_id: UUID, content: str) -> str:
    events = await events_of(agent, conversation_id, content)
    return "".join(e.text for e in events if isinstance(e, TokenDelta))


def remembered(reply: str) -> int:
    match = _REMEMBERED.search(reply)
    assert match is not None, reply
    return int(match.group(1))


async def test_the_reply_is_streamed_as_non_empty_deltas_that_add_up_to_it(agent: ChatAgent) -> None:
    events = await events_of(agent, uuid4(), "Tell me something")

    deltas = [e.text for e in events if isinstance(e, TokenDelta)]
    assert len(deltas) > 1
    assert all(deltas)
    assert "Tell me something" in "".join(deltas)


async def test_usage_is_reported_after_the_text_of_the_model_call(agent: ChatAgent) -> None:
    events = await events_of(agent, uuid4(), "hello")

    usages = [i for i, e in enumerate(events) if isinstance(e, Usage)]
    last_delta = max(i for i, e in enumerate(events) if isinstance(e, TokenDelta))
    assert len(usages) == 1
    assert usages[0] > last_delta
    usage = events[usages[0]]
    assert isinstance(usage, Usage)
    assert usage.model
    assert usage.prompt_tokens > 0
    assert usage.completion_tokens > 0


async def test_the_second_turn_sees_the_first(agent: ChatAgent) -> None:
    conversation = uuid4()

    first = await reply_of(agent, conversation, "first")
    second = await reply_of(agent, conversation, "second")

    assert remembered(first) == 0
    assert remembered(second) == 1


async def test_conversations_do_not_share_memory(agent: ChatAgent) -> None:
    await reply_of(agent, uuid4(), "in another conversation")

    assert remembered(await reply_of(agent, uuid4(), "hello")) == 0


async def test_forget_makes_the_agent_forget_the_conversation(agent: ChatAgent) -> None:
    conversation = uuid4()
    await reply_of(agent, conversation, "remember this")

    await agent.forget(conversation)
    await agent.forget(conversation)  # idempotent

    assert remembered(await reply_of(agent, conversation, "what did I say?")) == 0


async def test_forgetting_an_unknown_conversation_is_harmless(agent: ChatAgent) -> None:
    await agent.forget(uuid4())


async def test_events_reach_the_sink_while_the_reply_is_being_generated(agent: ChatAgent) -> None:
    running = RunningTurn(agent, turn(uuid4(), "Tell me something"))

    await running.first_text()
    text_so_far = len(running.events)
    await running.task

    assert len(running.events) > text_so_far  # more followed: the first came before the end


async def test_cancelling_a_run_early_leaves_the_agent_usable(agent: ChatAgent) -> None:
    conversation = uuid4()
    running = RunningTurn(agent, turn(conversation, "first"))
    await running.first_text()
    await running.cancel()

    reply = await reply_of(agent, conversation, "second")

    assert '"second"' in reply
