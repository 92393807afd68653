"""API.md, Chat section, through the whole stack: real PostgreSQL, the real LangGraph
agent with its Postgres checkpointer, and the offline model (no network)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import psycopg
import pytest

from parley.ports.agent import AgentTimeout, AgentUnavailable, TokenDelta
from tests.e2e.conftest import AppFactory, signed_up
from tests.e2e.sse_client import parse_events
from tests.e2e.test_auth_api import new_email
from tests.fakes.agent import ScriptedChatAgent, ScriptedTurn
from tests.fakes.openai_server import FakeOpenAIServer, FakeReply

pytestmark = pytest.mark.e2e
CHAT = "/api/v1/chat/sessions"


async def new_session(
    client: httpx.AsyncClient, headers: dict[str, str], name: str | None = None
) -> dict[str, Any]:
    response = await client.post(CHAT, headers=headers, json={"name": name} if name else None)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def send(
    client: httpx.AsyncClient, headers: dict[str, str], session_id: str, content: str
) -> httpx.Response:
    return await client.post(f"{CHAT}/{session_id}/messages", headers=headers, json={"content": content})


async def test_session_lifecycle(client: httpx.AsyncClient) -> None:
    headers = await signed_up(client, new_email())

    created = await new_session(client, headers)
    named = await new_session(client, headers, "  Trip  ")
    renamed = await client.patch(f"{CHAT}/{created['id']}", headers=headers, json={"name": " Plans "})
    fetched = await client.get(f"{CHAT}/{created['id']}", headers=headers)
    deleted = await client.delete(f"{CHAT}/{named['id']}", headers=headers)
    gone = await client.get(f"{CHAT}/{named['id']}", headers=headers)

    assert created["name"] == "New chat"
    assert created["message_count"] == 0
    assert set(created) == {"id", "name", "created_at", "updated_at", "message_count"}
    assert named["name"] == "Trip"
    assert renamed.json()["name"] == "Plans"
    assert fetched.json()["name"] == "Plans"
    assert deleted.status_code == 204
    assert gone.status_code == 404
    assert gone.json() == {"detail": "Session not found"}


@pytest.mark.parametrize("name", ["", "   ", "x" * 201])
async def test_bad_names_are_422(client: httpx.AsyncClient, name: str) -> None:
    headers = await signed_up(client, new_email())
    session = await new_session(client, headers)

    response = await client.patch(f"{CHAT}/{session['id']}", headers=headers, json={"name": name})

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "name"


async def test_listing_pages_most_recently_active_first(client: httpx.AsyncClient) -> None:
    headers = await signed_up(client, new_email())
    ids = [(await new_session(client, headers, f"s{n}"))["id"] for n in range(5)]
    await send(client, headers, ids[0], "wake the oldest up")

    seen: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await client.get(CHAT, headers=headers, params=params)).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert seen == [ids[0], ids[4], ids[3], ids[2], ids[1]]


@pytest.mark.parametrize(
    ("params", "field"),
    [({"limit": 0}, "limit"), ({"limit": 101}, "limit"), ({"cursor": "forged"}, "cursor")],
)
async def test_bad_list_parameters_are_422(
    client: httpx.AsyncClient, params: dict[str, Any], field: str
) -> None:
    headers = await signed_up(client, new_email())

    response = await client.get(CHAT, headers=headers, params=params)

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == field


async def test_another_users_session_is_404_everywhere(client: httpx.AsyncClient) -> None:
    alice = await signed_up(client, new_email())
    bob = await signed_up(client, new_email())
    session_id = (await new_session(client, alice))["id"]
    url = f"{CHAT}/{session_id}"

    responses = [
        await client.get(url, headers=bob),
        await client.patch(url, headers=bob, json={"name": "mine"}),
        await client.delete(url, headers=bob),
        await client.get(f"{url}/messages", headers=bob),
        await client.delete(f"{url}/messages", headers=bob),
        await send(client, bob, session_id, "hi"),
        await client.post(f"{url}/messages/stream", headers=bob, json={"content": "hi"}),
    ]

    assert [r.status_code for r in responses] == [404] * len(responses)
    assert (await client.get(url, headers=alice)).status_code == 200


async def test_a_malformed_session_id_is_422(client: httpx.AsyncClient) -> None:
    headers = await signed_up(client, new_email())

    response = await client.get(f"{CHAT}/not-a-uuid", headers=headers)

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "session_id"


async def test_chat_routes_need_a_token(client: httpx.AsyncClient) -> None:
    response = await client.get(CHAT)

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


async def test_a_turn_stores_the_message_exactly_and_the_offline_reply(client: httpx.AsyncClient) -> None:
    headers = await signed_up(client, new_email())
    session_id = (await new_session(client, headers))["id"]
    content = "  <script>alert('x')</script> & \"quotes\"\ttab\r\nnext line "

    response = await send(client, headers, session_id, content)

    assert response.status_code == 200
    body = response.json()
    assert body["message"]["content"] == content
    assert body["message"]["role"] == "user"
    assert body["reply"]["role"] == "assistant"
    assert body["reply"]["status"] == "complete"
    assert body["reply"]["content"].startswith("[offline model]")
    history = (await client.get(f"{CHAT}/{session_id}/messages", headers=headers)).json()
    assert [m["id"] for m in history["items"]] == [body["message"]["id"], body["reply"]["id"]]
    assert history["items"][0]["content"] == content
    assert (await client.get(f"{CHAT}/{session_id}", headers=headers)).json()["message_count"] == 2


@pytest.mark.parametrize("content", ["", "nul\x00byte", "bell\x07", "x" * 101])
async def test_bad_content_is_422_and_nothing_is_stored(start_app: AppFactory, content: str) -> None:
    _, client = await start_app(max_message_chars=100)
    headers = await signed_up(client, new_email())
    session_id = (await new_session(client, headers))["id"]

    response = await send(client, headers, session_id, content)

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "content"
    history = (await client.get(f"{CHAT}/{session_id}/messages", headers=headers)).json()
    assert history["items"] == []


async def test_history_pages_backwards(client: httpx.AsyncClient) -> None:
    headers = await signed_up(client, new_email())
    session_id = (await new_session(client, headers))["id"]
    for n in range(3):
        assert (await send(client, headers, session_id, f"m{n}")).status_code == 200
    url = f"{CHAT}/{session_id}/messages"

    newest = (await client.get(url, headers=headers, params={"limit": 4})).json()
    older = (
        await client.get(url, headers=headers, params={"limit": 4, "before": newest["next_cursor"]})
    ).json()
    bad_limit = await client.get(url, headers=headers, params={"limit": 201})
    bad_before = await client.get(url, headers=headers, params={"before": "nope"})

    assert [m["content"] for m in newest["items"] if m["role"] == "user"] == ["m1", "m2"]
    assert [m["content"] for m in older["items"] if m["role"] == "user"] == ["m0"]
    assert older["next_cursor"] is None
    assert bad_limit.status_code == 422
    assert bad_before.status_code == 422


async def test_the_stream_frames_message_tokens_and_done(client: httpx.AsyncClient) -> None:
    headers = await signed_up(client, new_email())
    session_id = (await new_session(client, headers))["id"]

    response = await client.post(
        f"{CHAT}/{session_id}/messages/stream", headers=headers, json={"content": "hello"}
    )

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = parse_events(response.text)
    names = [name for name, _ in events]
    assert names[0] == "message"
    assert names[-1] == "done"
    assert set(names[1:-1]) == {"token"}
    assert events[0][1]["message"]["content"] == "hello"
    done = events[-1][1]
    deltas = "".join(data["delta"] for name, data in events if name == "token")
    assert done["message"]["content"] == deltas
    assert done["usage"]["prompt_tokens"] > 0
    assert done["usage"]["completion_tokens"] > 0
    stored = (await client.get(f"{CHAT}/{session_id}/messages", headers=headers)).json()["items"]
    assert stored[-1]["content"] == deltas


async def test_a_tool_call_reaches_the_stream(client: httpx.AsyncClient) -> None:
    headers = await signed_up(client, new_email())
    session_id = (await new_session(client, headers))["id"]

    response = await client.post(
        f"{CHAT}/{session_id}/messages/stream", headers=headers, json={"content": "what is 2+3*4"}
    )

    events = parse_events(response.text)
    tools = [data for name, data in events if name == "tool"]
    assert tools == [{"name": "calculator", "arguments": tools[0]["arguments"], "result": "14"}]
    assert "14" in events[-1][1]["message"]["content"]


async def test_memory_survives_an_app_restart(start_app: AppFactory) -> None:
    _, first_app = await start_app()
    headers = await signed_up(first_app, new_email())
    session_id = (await new_session(first_app, headers))["id"]
    await send(first_app, headers, session_id, "my name is Ada")

    _, second_app = await start_app()  # a new container, agent and checkpointer pool
    reply = (await send(second_app, headers, session_id, "what is my name?")).json()["reply"]["content"]

    assert "I remember 1 earlier user message(s)" in reply


async def _checkpoint_rows(database_url: str, thread_id: str) -> int:
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cursor = await conn.execute("SELECT count(*) FROM checkpoints WHERE thread_id = %s", (thread_id,))
        row = await cursor.fetchone()
    assert row is not None
    return int(row[0])


async def test_deleting_a_session_or_clearing_it_removes_its_checkpoints(
    client: httpx.AsyncClient, e2e_database_url: str
) -> None:
    headers = await signed_up(client, new_email())
    cleared = (await new_session(client, headers))["id"]
    deleted = (await new_session(client, headers))["id"]
    for session_id in (cleared, deleted):
        await send(client, headers, session_id, "remember this")
        assert await _checkpoint_rows(e2e_database_url, session_id) > 0

    assert (await client.delete(f"{CHAT}/{cleared}/messages", headers=headers)).status_code == 204
    assert (await client.delete(f"{CHAT}/{deleted}", headers=headers)).status_code == 204

    assert await _checkpoint_rows(e2e_database_url, cleared) == 0
    assert await _checkpoint_rows(e2e_database_url, deleted) == 0
    assert (await client.get(f"{CHAT}/{cleared}", headers=headers)).json()["message_count"] == 0
    reply = (await send(client, headers, cleared, "anything?")).json()["reply"]["content"]
    assert "I remember 0 earlier user message(s)" in reply


async def test_deleting_the_account_removes_sessions_and_checkpoints(
    client: httpx.AsyncClient, e2e_database_url: str
) -> None:
    headers = await signed_up(client, new_email())
    session_id = (await new_session(client, headers))["id"]
    await send(client, headers, session_id, "remember this")

    assert (await client.delete("/api/v1/users/me", headers=headers)).status_code == 204

    assert await _checkpoint_rows(e2e_database_url, session_id) == 0
    async with await psycopg.AsyncConnection.connect(e2e_database_url) as conn:
        cursor = await conn.execute("SELECT count(*) FROM messages WHERE conversation_id = %s", (session_id,))
        assert await cursor.fetchone() == (0,)


async def test_a_second_concurrent_send_is_409(start_app: AppFactory) -> None:
    agent = ScriptedChatAgent([ScriptedTurn.reply("slow reply", chunk=2, delay=0.05)])
    _, client = await start_app(overrides={"agent": agent})
    headers = await signed_up(client, new_email())
    session_id = (await new_session(client, headers))["id"]

    first = asyncio.create_task(send(client, headers, session_id, "one"))
    while not agent.streams:  # noqa: ASYNC110 - the fake agent has no event to wait on
        await asyncio.sleep(0.01)
    second = await send(client, headers, session_id, "two")
    stream = await client.post(f"{CHAT}/{session_id}/messages/stream", headers=headers, json={"content": "3"})

    assert second.status_code == 409
    assert second.json() == {"detail": "A reply is already being generated for this session"}
    assert stream.status_code == 409
    assert (await first).status_code == 200
    assert (await send(client, headers, session_id, "four")).status_code == 200


@pytest.mark.parametrize(("error", "status"), [(AgentUnavailable("down"), 502), (AgentTimeout("slow"), 504)])
async def test_model_failures_are_502_or_504_and_keep_the_user_message(
    start_app: AppFactory, error: Exception, status: int
) -> None:
    agent = ScriptedChatAgent([ScriptedTurn.failing(error, events=[TokenDelta("par")])])
    _, client = await start_app(overrides={"agent": agent})
    headers = await signed_up(client, new_email())
    session_id = (await new_session(client, headers))["id"]

    response = await send(client, headers, session_id, "hello")

    assert response.status_code == status
    assert response.json() == {"detail": "The language model is unavailable"}
    items = (await client.get(f"{CHAT}/{session_id}/messages", headers=headers)).json()["items"]
    assert [(m["role"], m["status"]) for m in items] == [("user", "complete"), ("assistant", "failed")]


async def test_a_model_failure_mid_stream_ends_with_an_error_event(start_app: AppFactory) -> None:
    agent = ScriptedChatAgent([ScriptedTurn.failing(AgentUnavailable("cut"), events=[TokenDelta("par")])])
    _, client = await start_app(overrides={"agent": agent})
    headers = await signed_up(client, new_email())
    session_id = (await new_session(client, headers))["id"]

    response = await client.post(
        f"{CHAT}/{session_id}/messages/stream", headers=headers, json={"content": "hi"}
    )

    events = parse_events(response.text)
    assert [name for name, _ in events] == ["message", "token", "error"]
    assert events[-1][1] == {"detail": "The language model is unavailable"}


async def test_whole_replies_use_one_non_streamed_model_request(start_app: AppFactory) -> None:
    with FakeOpenAIServer(FakeReply(text="Forty-two, of course.")) as model:
        _, client = await start_app(llm={"api_key": "test-key", "base_url": model.base_url, "model": "fake"})
        headers = await signed_up(client, new_email())
        session_id = (await new_session(client, headers))["id"]

        whole = await send(client, headers, session_id, "question one")
        streamed = await client.post(
            f"{CHAT}/{session_id}/messages/stream", headers=headers, json={"content": "question two"}
        )

    assert whole.json()["reply"]["content"] == "Forty-two, of course."
    assert parse_events(streamed.text)[-1][1]["message"]["content"] == "Forty-two, of course."
    assert [bool(r.body.get("stream")) for r in model.requests] == [False, True]


async def test_a_silent_stream_sends_ping_comments(start_app: AppFactory) -> None:
    agent = ScriptedChatAgent([ScriptedTurn(events=[TokenDelta("late")], delay=0.5)])
    _, client = await start_app(overrides={"agent": agent}, http={"sse_ping_seconds": 0.1})
    headers = await signed_up(client, new_email())
    session_id = (await new_session(client, headers))["id"]

    response = await client.post(
        f"{CHAT}/{session_id}/messages/stream", headers=headers, json={"content": "hi"}
    )

    assert ": ping" in response.text.split("event: token")[0]  # pings while the model was silent
    assert [name for name, _ in parse_events(response.text)] == ["message", "token", "done"]


async def test_a_model_reply_with_nul_or_lone_surrogates_is_stored_and_streamed_alike(
    start_app: AppFactory,
) -> None:
    """A model's output cannot be refused like a user's input: what PostgreSQL or UTF-8 cannot
    hold becomes U+FFFD, the same in the stream, the stored reply and the whole reply."""
    with FakeOpenAIServer() as model:
        model.script(FakeReply(text="bad\x00 byte and \ud800 half"), FakeReply(text="x\x00y"))
        _, client = await start_app(llm={"api_key": "test-key", "base_url": model.base_url, "model": "fake"})
        headers = await signed_up(client, new_email())
        session_id = (await new_session(client, headers))["id"]

        streamed = await client.post(
            f"{CHAT}/{session_id}/messages/stream", headers=headers, json={"content": "go"}
        )
        whole = await send(client, headers, session_id, "again")

    events = parse_events(streamed.text)
    assert events[-1][0] == "done"
    deltas = "".join(data["delta"] for name, data in events if name == "token")
    assert deltas == events[-1][1]["message"]["content"] == "bad\ufffd byte and \ufffd half"
    assert whole.status_code == 200
    assert whole.json()["reply"]["content"] == "x\ufffdy"
    stored = (await client.get(f"{CHAT}/{session_id}/messages", headers=headers)).json()["items"]
    assert [m["content"] for m in stored if m["role"] == "assistant"] == [deltas, "x\ufffdy"]
