"""Deleting or clearing a session (or the account) while its reply is being generated.

The rule (API.md is silent; this is what a client expects): the delete or clear wins. A reply
being generated for the deleted/cleared history is not stored, its stream ends with an
``error`` event (``Session not found`` / the history was cleared), and nothing of the old
conversation stays behind: no orphan reply, no agent memory (checkpoint rows). When the turn
runs in this instance it is stopped at once; when it runs in another instance, it finds out
as it ends. Driven through the real app, the LangGraph agent and the offline model, slowed
down so the races are real.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import psycopg
import pytest

from tests.e2e.conftest import AppFactory, signed_up
from tests.e2e.sse_client import parse_events
from tests.e2e.test_auth_api import new_email
from tests.e2e.test_chat_api import CHAT, new_session, send

pytestmark = pytest.mark.e2e

# About 40 tokens at 60 ms each: a reply that takes seconds to stream.
LONG_QUESTION = "please tell me a long story about " + " ".join(f"word{i}" for i in range(30))
SLOW_TOKENS = {"llm": {"offline_token_delay_ms": 60}}


async def checkpoint_rows(database_url: str, thread_id: str) -> int:
    """Rows the agent's checkpointer keeps for a conversation, in all its tables."""
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        total = 0
        for table in ("checkpoints", "checkpoint_writes", "checkpoint_blobs"):
            cursor = await conn.execute(f"SELECT count(*) FROM {table} WHERE thread_id = %s", (thread_id,))
            row = await cursor.fetchone()
            assert row is not None
            total += int(row[0])
    return total


async def messages_of(client: httpx.AsyncClient, headers: dict[str, str], session_id: str) -> list[Any]:
    response = await client.get(f"{CHAT}/{session_id}/messages", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["items"]  # type: ignore[no-any-return]


async def start_streaming(
    client: httpx.AsyncClient, headers: dict[str, str], session_id: str
) -> asyncio.Task[httpx.Response]:
    """Open a stream in the background; return once its turn has started (its message is stored)."""
    stream = asyncio.create_task(
        client.post(f"{CHAT}/{session_id}/messages/stream", headers=headers, json={"content": LONG_QUESTION})
    )
    async with asyncio.timeout(30):
        while LONG_QUESTION not in [m["content"] for m in await messages_of(client, headers, session_id)]:
            assert not stream.done(), stream.result().text
            await asyncio.sleep(0.02)
    return stream


async def streaming_on_another_instance(
    start_app: AppFactory,
) -> tuple[httpx.AsyncClient, dict[str, str], str, asyncio.Task[httpx.Response]]:
    """Two instances on one database; a reply streams on the first. Returns the second instance,
    the user's headers, the session and the stream."""
    _, streaming_instance = await start_app(**SLOW_TOKENS)
    _, other_instance = await start_app()
    headers = await signed_up(streaming_instance, new_email())
    session_id = (await new_session(streaming_instance, headers))["id"]
    return other_instance, headers, session_id, await start_streaming(streaming_instance, headers, session_id)


def last_event(response: httpx.Response) -> tuple[str, dict[str, Any]]:
    assert response.status_code == 200, response.text
    return parse_events(response.text)[-1]


async def test_deleting_a_session_while_its_reply_streams_stops_it_and_leaves_nothing(
    start_app: AppFactory, e2e_database_url: str
) -> None:
    app, client = await start_app(**SLOW_TOKENS)
    headers = await signed_up(client, new_email())
    session_id = (await new_session(client, headers))["id"]
    stream = await start_streaming(client, headers, session_id)

    deleted = await client.delete(f"{CHAT}/{session_id}", headers=headers)

    assert deleted.status_code == 204
    async with asyncio.timeout(5):  # stopped, not left to run its course
        response = await stream
    assert last_event(response) == ("error", {"detail": "Session not found"})
    assert await checkpoint_rows(e2e_database_url, session_id) == 0
    assert (await client.get(f"{CHAT}/{session_id}", headers=headers)).status_code == 404
    assert len(app.state.container.running_turns()) == 0


async def test_clearing_history_while_a_reply_streams_stops_it_and_forgets_everything(
    start_app: AppFactory, e2e_database_url: str
) -> None:
    _, client = await start_app(**SLOW_TOKENS)
    headers = await signed_up(client, new_email())
    session_id = (await new_session(client, headers))["id"]
    await send(client, headers, session_id, "remember that my name is Ada")
    stream = await start_streaming(client, headers, session_id)

    cleared = await client.delete(f"{CHAT}/{session_id}/messages", headers=headers)

    assert cleared.status_code == 204
    async with asyncio.timeout(5):
        response = await stream
    assert last_event(response) == (
        "error",
        {"detail": "The session's history was cleared while the reply was being generated"},
    )
    assert await messages_of(client, headers, session_id) == []  # no orphan reply
    assert await checkpoint_rows(e2e_database_url, session_id) == 0
    after = (await send(client, headers, session_id, "who am I?")).json()["reply"]["content"]
    assert "I remember 0 earlier user message(s)" in after  # the agent forgot the cleared turns


async def test_a_clear_by_another_instance_discards_the_reply_being_generated(
    start_app: AppFactory, e2e_database_url: str
) -> None:
    other_instance, headers, session_id, stream = await streaming_on_another_instance(start_app)

    cleared = await other_instance.delete(f"{CHAT}/{session_id}/messages", headers=headers)
    busy = await send(other_instance, headers, session_id, "too early")

    assert cleared.status_code == 204
    assert busy.status_code == 409  # one reply at a time, until the old one has cleaned up
    assert last_event(await stream) == (
        "error",
        {"detail": "The session's history was cleared while the reply was being generated"},
    )
    assert await messages_of(other_instance, headers, session_id) == []
    assert await checkpoint_rows(e2e_database_url, session_id) == 0
    after = (await send(other_instance, headers, session_id, "anyone?")).json()["reply"]["content"]
    assert "I remember 0 earlier user message(s)" in after


async def test_a_delete_by_another_instance_leaves_no_agent_memory_behind(
    start_app: AppFactory, e2e_database_url: str
) -> None:
    other_instance, headers, session_id, stream = await streaming_on_another_instance(start_app)

    assert (await other_instance.delete(f"{CHAT}/{session_id}", headers=headers)).status_code == 204

    assert last_event(await stream) == ("error", {"detail": "Session not found"})
    assert await checkpoint_rows(e2e_database_url, session_id) == 0


async def test_deleting_the_account_while_a_reply_streams_stops_it_and_leaves_nothing(
    start_app: AppFactory, e2e_database_url: str
) -> None:
    _, client = await start_app(**SLOW_TOKENS)
    headers = await signed_up(client, new_email())
    session_id = (await new_session(client, headers))["id"]
    stream = await start_streaming(client, headers, session_id)

    assert (await client.delete("/api/v1/users/me", headers=headers)).status_code == 204

    async with asyncio.timeout(5):
        name, _ = last_event(await stream)
    assert name == "error"
    assert await checkpoint_rows(e2e_database_url, session_id) == 0
    async with await psycopg.AsyncConnection.connect(e2e_database_url) as conn:
        cursor = await conn.execute("SELECT count(*) FROM messages WHERE conversation_id = %s", (session_id,))
        assert await cursor.fetchone() == (0,)
