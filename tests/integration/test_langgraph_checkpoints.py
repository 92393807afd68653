"""LangGraphChatAgent's PostgreSQL checkpoint store: start-up, concurrency, failures."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from uuid import uuid4

import psycopg
import pytest
from tests.agent_runs import RunningTurn, collect

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

        replies = [await collect(agent, AgentTurn(uuid4(), uuid4(), "hi")) for agent in agents]
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
        events = await collect(agent, AgentTurn(conversation, uuid4(), "again"))

    assert any(isinstance(e, TokenDelta) for e in events)


async def test_a_stuck_checkpoint_write_does_not_hold_up_other_conversations(
    create_database: Callable[[], str],
) -> None:
    """AsyncPostgresSaver alone runs every query of the process one at a time: one stuck
    write (here: waiting on a table lock) would stall every other turn's checkpoint read."""
    database_url = create_database()
    async with LangGraphChatAgent(postgres_url=database_url, pool_size=4) as agent:
        async with await psycopg.AsyncConnection.connect(database_url) as locker, locker.transaction():
            await locker.execute("LOCK TABLE checkpoints IN EXCLUSIVE MODE")  # reads still pass
            stuck = RunningTurn(agent, AgentTurn(uuid4(), uuid4(), "stuck"))
            await _until_a_query_waits_for_a_lock(locker)

            other = RunningTurn(agent, AgentTurn(uuid4(), uuid4(), "hi"))
            first = await other.first_text(timeout=5)

            assert isinstance(first, TokenDelta)
            assert not stuck.task.done()
        await asyncio.wait_for(stuck.task, timeout=5)  # the lock is gone with the transaction
        await other.cancel()


async def _until_a_query_waits_for_a_lock(conn: psycopg.AsyncConnection[tuple[object, ...]]) -> None:
    async with asyncio.timeout(5):
        while True:
            cursor = await conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                " AND datname = current_database() AND pid <> pg_backend_pid()"
            )
            row = await cursor.fetchone()
            if row is not None and int(str(row[0])) > 0:
                return
            await asyncio.sleep(0.02)
