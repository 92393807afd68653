"""The database restarting or going away around chat turns, for real: the app (both its pool and
the agent's checkpoint pool) reaches PostgreSQL through a TCP proxy the test cuts and restores."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tests.e2e.conftest import AppFactory, signed_up
from tests.e2e.sse_client import parse_events
from tests.e2e.test_auth_api import new_email
from tests.e2e.test_chat_api import CHAT, new_session, send
from tests.e2e.test_chat_races import last_event, messages_of, start_streaming
from tests.fakes.tcp_proxy import CuttableProxy

pytestmark = pytest.mark.e2e


@pytest.fixture
async def proxy(e2e_database_url: str) -> AsyncIterator[CuttableProxy]:
    made = CuttableProxy(e2e_database_url)
    await made.start()
    yield made
    await made.cut()


async def test_no_chat_turn_fails_after_the_database_restarts(
    start_app: AppFactory, proxy: CuttableProxy
) -> None:
    _, client = await start_app(db={"url": proxy.url, "pool_size": 3})
    headers = await signed_up(client, new_email())
    sessions = [(await new_session(client, headers))["id"] for _ in range(3)]
    # Every pooled connection of both pools has been used once.
    for response in await asyncio.gather(*(send(client, headers, s, "before") for s in sessions)):
        assert response.status_code == 200, response.text

    await proxy.cut()  # as a restart does: every open connection dies
    await proxy.restore()

    statuses = []
    for turn in range(8):  # more turns than either pool has connections
        session_id = sessions[turn % len(sessions)]
        statuses.append((await send(client, headers, session_id, "after")).status_code)
        streamed = await client.post(
            f"{CHAT}/{session_id}/messages/stream", headers=headers, json={"content": "after"}
        )
        statuses.append(streamed.status_code if parse_events(streamed.text)[-1][0] == "done" else 0)
    assert statuses == [200] * 16


async def test_clearing_and_deleting_right_after_a_database_restart_work(
    start_app: AppFactory, proxy: CuttableProxy
) -> None:
    """The agent's first checkpoint operation after a restart may be a forget, not a turn."""
    _, client = await start_app(db={"url": proxy.url, "pool_size": 2})
    headers = await signed_up(client, new_email())
    sessions = [(await new_session(client, headers))["id"] for _ in range(2)]
    for response in await asyncio.gather(*(send(client, headers, s, "before") for s in sessions)):
        assert response.status_code == 200, response.text

    await proxy.cut()
    await proxy.restore()

    assert (await client.delete(f"{CHAT}/{sessions[0]}/messages", headers=headers)).status_code == 204
    assert (await client.delete(f"{CHAT}/{sessions[1]}", headers=headers)).status_code == 204


async def test_an_outage_mid_stream_is_a_503_and_the_reply_is_stored_once_the_database_is_back(
    start_app: AppFactory, proxy: CuttableProxy
) -> None:
    _, client = await start_app(db={"url": proxy.url, "pool_timeout": 1}, llm={"offline_token_delay_ms": 30})
    headers = await signed_up(client, new_email())
    session_id = (await new_session(client, headers))["id"]
    stream = await start_streaming(client, headers, session_id)

    await proxy.cut()
    ended = await stream

    assert last_event(ended) == ("error", {"detail": "Service unavailable"})
    await proxy.restore()
    async with asyncio.timeout(20):  # retried with a backoff of at most 5 s
        while len(items := await messages_of(client, headers, session_id)) < 2:  # noqa: ASYNC110 - polls the API
            await asyncio.sleep(0.2)
    assert [(m["role"], m["status"]) for m in items] == [("user", "complete"), ("assistant", "failed")]
    streamed_text = "".join(data["delta"] for name, data in parse_events(ended.text) if name == "token")
    assert items[1]["content"] == streamed_text
    # The conversation is not left claimed (never a 409). The agent's checkpoint pool reconnects
    # with psycopg_pool's backoff, which grew during the outage: until then a turn is a 503.
    statuses: list[int] = []
    async with asyncio.timeout(20):
        while not statuses or statuses[-1] == 503:
            statuses.append((await send(client, headers, session_id, "again")).status_code)
    assert statuses[-1] == 200
    assert 409 not in statuses


async def test_a_request_that_waits_too_long_for_a_connection_is_a_503_with_retry_after(
    start_app: AppFactory,
) -> None:
    app, client = await start_app(db={"pool_size": 1, "pool_timeout": 0.3})
    headers = await signed_up(client, new_email())

    async with app.state.container.uow_factory()():  # holds the only connection
        response = await client.get(CHAT, headers=headers)

    assert response.status_code == 503
    assert response.json() == {"detail": "Service unavailable"}
    assert response.headers["retry-after"] == "5"
    assert (await client.get(CHAT, headers=headers)).status_code == 200


async def test_health_reports_the_database_up_while_every_pooled_connection_is_busy(
    start_app: AppFactory,
) -> None:
    """A burst that keeps the pool busy must not make an orchestrator restart a healthy instance."""
    app, client = await start_app(db={"pool_size": 1, "pool_timeout": 0.3})

    async with app.state.container.uow_factory()():  # holds the pool's only connection
        health = await client.get("/health")

    assert health.status_code == 200
    assert health.json()["checks"] == {"database": "ok"}
