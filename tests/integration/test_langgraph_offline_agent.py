"""LangGraphChatAgent with the offline model and the in-memory checkpointer (no network, no database).

The same graph as production runs here, so the tool path, trimming, time limits and
cancellation are exercised end to end through LangGraph.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from tests.agent_runs import RunningTurn, collect

from parley.adapters.outbound.langgraph import (
    OFFLINE_PREFIX,
    AgentLimits,
    LangGraphChatAgent,
    ModelConfig,
)
from parley.ports.agent import AgentEvent, AgentTimeout, AgentTurn, TokenDelta, ToolCall, Usage

pytestmark = pytest.mark.integration


def offline_agent(*, token_delay: float = 0.0, **limits: Any) -> LangGraphChatAgent:
    return LangGraphChatAgent(
        checkpoint_store="memory",
        model=ModelConfig(api_key=None, offline_token_delay=token_delay),
        limits=AgentLimits(**limits),
    )


@pytest.fixture
async def agent() -> AsyncIterator[LangGraphChatAgent]:
    async with offline_agent() as started:
        yield started


def turn(content: str, conversation_id: UUID | None = None) -> AgentTurn:
    return AgentTurn(conversation_id=conversation_id or uuid4(), user_id=uuid4(), content=content)


def text_of(events: list[AgentEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TokenDelta))


async def test_the_offline_reply_is_labelled_and_quotes_the_message(agent: LangGraphChatAgent) -> None:
    events = await collect(agent, turn("Bonjour"))

    assert text_of(events) == f'{OFFLINE_PREFIX}I remember 0 earlier user message(s). You said: "Bonjour"'
    assert isinstance(events[-1], Usage)
    assert events[-1].model == agent.model_name


async def test_arithmetic_goes_through_the_calculator_tool(agent: LangGraphChatAgent) -> None:
    events = await collect(agent, turn("what is 2+3*4?"))

    assert ToolCall("calculator", {"expression": "2+3*4"}, "14") in events
    assert text_of(events) == f"{OFFLINE_PREFIX}The calculator tool says: 14"
    assert sum(isinstance(e, Usage) for e in events) == 2


async def test_a_failing_tool_reports_its_error_instead_of_failing_the_turn(
    agent: LangGraphChatAgent,
) -> None:
    events = await collect(agent, turn("what is 1/0"))

    call = next(e for e in events if isinstance(e, ToolCall))
    assert "division by zero" in call.result
    assert "division by zero" in text_of(events)


async def test_asking_the_time_calls_the_clock_tool(agent: LangGraphChatAgent) -> None:
    events = await collect(agent, turn("What time is it?"))

    call = next(e for e in events if isinstance(e, ToolCall))
    assert call.name == "current_time"
    told = datetime.fromisoformat(call.result)
    assert told.utcoffset() == timedelta(0)
    assert abs(datetime.now(UTC) - told) < timedelta(seconds=5)


async def test_a_tool_turn_is_remembered_as_one_user_message(agent: LangGraphChatAgent) -> None:
    conversation = uuid4()
    await collect(agent, turn("what is 6*7", conversation))

    events = await collect(agent, turn("thanks", conversation))

    assert "I remember 1 earlier user message(s)" in text_of(events)


async def test_a_small_context_budget_drops_the_oldest_turns() -> None:
    conversation = uuid4()
    async with offline_agent(context_tokens=120) as agent:
        for index in range(5):
            await collect(agent, turn(f"turn {index} " + "words " * 10, conversation))
        events = await collect(agent, turn("last", conversation))

    remembered = int(text_of(events).split("I remember ")[1].split()[0])
    assert 0 < remembered < 5


async def test_a_turn_slower_than_its_budget_times_out() -> None:
    async with offline_agent(token_delay=0.05, turn_timeout=0.2) as agent:
        received: list[AgentEvent] = []
        with pytest.raises(AgentTimeout):
            await collect(agent, turn("a long question " * 10), into=received)

    assert 0 < len(received) < 10


async def test_cancelling_a_slow_offline_stream_leaves_no_task_behind() -> None:
    async with offline_agent(token_delay=0.05) as agent:
        tasks_before = asyncio.all_tasks()
        running = RunningTurn(agent, turn("please say a lot of things"))
        await running.first_text()
        await running.cancel()

        assert asyncio.all_tasks() - tasks_before == set()


async def test_streaming_before_start_is_a_programming_error() -> None:
    agent = offline_agent()

    with pytest.raises(RuntimeError, match="start"):
        await collect(agent, turn("hello"))
