"""LangGraphChatAgent's PostgreSQL checkpoint store: start-up, concurrency, failures."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from uuid import uuid4

import psycopg
import pytest

from parley.adapters.outbound.langgraph import LangGraphChatAgent
from parley.ports.agent import AgentTurn, AgentUnavailable, TokenDelta

pytestmark = pytest.mark.integration


async def test_agents_starting_together_on_a_new_database_all_start(
    create_database: Callable[[], str],
) -> None:
    database_url = create_database()
    agents = [LangGraphChatAgent(postgres_url=database_url) for _ in range(4)]
    try:
        await asyncio.gather(*(agent.start() for agent in agents))

        replies = [[e async for e in agent.stream(AgentTurn(uuid4(), uuid4(), "hi"))] for agent in agents]
    finally:
        await asyncio.gather(*(agent.aclose() for agent in agents))

    assert all(any(isinstance(e, TokenDelta) for e in events) for events in replies)
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT count(*) FROM checkpoint_migrations").fetchone()
    assert row is not None
    assert row[0] > 0


async def test_an_unreachable_database_makes_start_fail_as_unavailable() -> None:
    agent = LangGraphChatAgent(postgres_url="postgresql://postgres@127.0.0.1:1/none", connect_timeout=0.5)

    with pytest.raises(AgentUnavailable):
        await agent.start()


async def test_the_agent_can_be_closed_and_started_again(create_database: Callable[[], str]) -> None:
    agent = LangGraphChatAgent(postgres_url=create_database())
    conversation = uuid4()
    await agent.start()
    await agent.aclose()
    await agent.aclose()  # idempotent

    async with agent:
        events = [e async for e in agent.stream(AgentTurn(conversation, uuid4(), "again"))]

    assert any(isinstance(e, TokenDelta) for e in events)
