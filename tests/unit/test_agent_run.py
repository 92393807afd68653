"""``AgentRun`` and ``wait_through_cancellation``: the agent task's lifecycle."""

from __future__ import annotations

import asyncio
from uuid import UUID

import pytest

from parley.application.chat.agent_run import AgentInterrupted, AgentRun, wait_through_cancellation
from parley.ports.agent import AgentTurn, AgentUnavailable, TokenDelta
from tests.fakes.agent import ScriptedChatAgent, ScriptedTurn

pytestmark = pytest.mark.unit

TURN = AgentTurn(conversation_id=UUID(int=1), user_id=UUID(int=2), content="hi")


async def test_events_come_in_order_then_end() -> None:
    run = AgentRun(ScriptedChatAgent([ScriptedTurn.reply("one two", chunk=4)]), TURN)

    texts = [event.text async for event in run.events() if isinstance(event, TokenDelta)]

    assert "".join(texts) == "one two"


async def test_the_agents_error_is_raised_by_events() -> None:
    run = AgentRun(ScriptedChatAgent([ScriptedTurn.failing(AgentUnavailable("down"))]), TURN)

    with pytest.raises(AgentUnavailable):
        async for _ in run.events():
            pass


async def test_interrupt_stops_a_hanging_agent_and_events_raise_why() -> None:
    agent = ScriptedChatAgent([ScriptedTurn(events=[TokenDelta("so far")], hang=True)])
    run = AgentRun(agent, TURN)
    why = RuntimeError("deleted")
    first_event = asyncio.Event()

    async def consume() -> None:
        async for _ in run.events():
            first_event.set()

    consumer = asyncio.ensure_future(consume())
    await first_event.wait()
    await run.interrupt(why)

    with pytest.raises(AgentInterrupted) as interrupted:
        await consumer
    assert interrupted.value.error is why
    assert agent.closed_early


async def test_a_wait_cancelled_again_and_again_still_lasts_until_the_work_is_done() -> None:
    gate = asyncio.Event()
    done: list[str] = []

    async def clean_up() -> None:
        await gate.wait()
        done.append("stored")

    work = asyncio.ensure_future(clean_up())
    waiter = asyncio.ensure_future(wait_through_cancellation(work))
    for _ in range(5):  # a framework re-cancelling every await (anyio does)
        await asyncio.sleep(0)
        waiter.cancel()
    await asyncio.sleep(0)
    assert not waiter.done()

    gate.set()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert done == ["stored"]
