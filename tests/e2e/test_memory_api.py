"""Long-term memory per user through the API, on real PostgreSQL: facts stated in one session are
recalled in another (the offline model says which facts its system prompt holds; a model on a
local fake OpenAI-compatible server extracts them and is shown them), the caller lists and
deletes them, nobody else sees them, account deletion erases them, and a setting turns it off."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import httpx
import pytest
from fastapi import FastAPI

from parley.adapters.outbound.langgraph.context import MEMORIES_HEADING
from parley.adapters.outbound.langgraph.facts import FACTS_MAX_TOKENS, FACTS_PROMPT
from parley.application.memory import UserMemory
from parley.config import ConfigurationError
from tests.e2e.conftest import AppFactory, signed_up
from tests.e2e.test_auth_api import new_email
from tests.e2e.test_chat_titles import new_session, stream
from tests.fakes.openai_server import FakeOpenAIServer, FakeReply

pytestmark = pytest.mark.e2e
CHAT = "/api/v1/chat/sessions"
MEMORIES = "/api/v1/users/me/memories"


def memory_of(app: FastAPI) -> UserMemory:
    memory = app.state.container.user_memory()
    assert isinstance(memory, UserMemory)
    return memory


async def say(app: FastAPI, client: httpx.AsyncClient, headers: dict[str, str], content: str) -> str:
    """Send ``content`` in a new session (non-streamed); the reply's text, once learnt from."""
    session_id = await new_session(client, headers)
    sent = await client.post(f"{CHAT}/{session_id}/messages", headers=headers, json={"content": content})
    assert sent.status_code == 200, sent.text
    await memory_of(app).idle()
    return str(sent.json()["reply"]["content"])


async def memories(client: httpx.AsyncClient, headers: dict[str, str], **params: Any) -> dict[str, Any]:
    response = await client.get(MEMORIES, headers=headers, params=params)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


@pytest.fixture
async def app_client(start_app: AppFactory) -> tuple[FastAPI, httpx.AsyncClient]:
    """The app with memory on, as it is by default (the e2e test settings turn it off)."""
    return await start_app(memory={"enabled": True})


async def test_a_fact_stated_in_one_session_is_recalled_in_another(
    app_client: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = app_client
    headers = await signed_up(client, new_email())

    await say(app, client, headers, "Hello! My name is Ada Lovelace. I prefer tea over coffee.")
    session_id = await new_session(client, headers)
    done = await stream(client, headers, session_id, "What is my name?")

    listed = await memories(client, headers)
    assert sorted(m["text"] for m in listed["items"]) == [
        "The user prefers tea over coffee",
        "The user's name is Ada Lovelace",
    ]
    assert listed["next_cursor"] is None
    assert all(set(m) == {"id", "text", "created_at"} for m in listed["items"])
    # The offline model lists the facts its system prompt holds, the most relevant first.
    assert done["message"]["content"].endswith(
        "I know about you: The user's name is Ada Lovelace; The user prefers tea over coffee."
    )


async def test_a_fact_told_twice_is_one_memory_and_questions_state_nothing(
    app_client: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = app_client
    headers = await signed_up(client, new_email())

    await say(app, client, headers, "I live in Lisbon.")
    (first,) = (await memories(client, headers))["items"]
    await say(app, client, headers, "i live in   LISBON")
    await say(app, client, headers, "Do I like jazz? What is 2 + 2?")

    (kept,) = (await memories(client, headers))["items"]
    assert kept == first | {"text": "The user lives in LISBON"}  # same memory, latest wording


async def test_memories_are_paged_newest_first(app_client: tuple[FastAPI, httpx.AsyncClient]) -> None:
    app, client = app_client
    headers = await signed_up(client, new_email())
    for city in ("Lisbon", "Porto", "Faro"):
        await say(app, client, headers, f"I live in {city}.")

    first = await memories(client, headers, limit=2)
    second = await memories(client, headers, limit=2, cursor=first["next_cursor"])
    forged = await client.get(MEMORIES, headers=headers, params={"cursor": "not-a-cursor"})
    too_big = await client.get(MEMORIES, headers=headers, params={"limit": 101})

    texts = [m["text"] for m in first["items"] + second["items"]]
    assert texts == [f"The user lives in {city}" for city in ("Faro", "Porto", "Lisbon")]
    assert second["next_cursor"] is None
    assert (forged.status_code, forged.json()["errors"][0]["field"]) == (422, "cursor")
    assert (too_big.status_code, too_big.json()["errors"][0]["field"]) == (422, "limit")


async def test_the_caller_forgets_one_memory_or_all(app_client: tuple[FastAPI, httpx.AsyncClient]) -> None:
    app, client = app_client
    headers = await signed_up(client, new_email())
    await say(app, client, headers, "My name is Ada. I like sailing.")
    listed = (await memories(client, headers))["items"]
    name = next(m for m in listed if "Ada" in m["text"])

    deleted = await client.delete(f"{MEMORIES}/{name['id']}", headers=headers)
    again = await client.delete(f"{MEMORIES}/{name['id']}", headers=headers)
    not_uuid = await client.delete(f"{MEMORIES}/not-a-uuid", headers=headers)
    left = [m["text"] for m in (await memories(client, headers))["items"]]
    reply = await say(app, client, headers, "Who am I?")
    cleared = await client.delete(MEMORIES, headers=headers)
    cleared_again = await client.delete(MEMORIES, headers=headers)
    after_clear = await say(app, client, headers, "What do I like?")

    assert deleted.status_code == 204
    assert (again.status_code, again.json()) == (404, {"detail": "Memory not found"})
    assert (not_uuid.status_code, not_uuid.json()["errors"][0]["field"]) == (422, "memory_id")
    assert left == ["The user likes sailing"]
    assert reply.endswith("I know about you: The user likes sailing.")
    assert (cleared.status_code, cleared_again.status_code) == (204, 204)
    assert (await memories(client, headers))["items"] == []
    assert "I know about you" not in after_clear


async def test_another_user_neither_sees_nor_deletes_nor_recalls_them(
    app_client: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = app_client
    ada = await signed_up(client, new_email())
    bob = await signed_up(client, new_email())
    await say(app, client, ada, "My name is Ada.")
    (memory,) = (await memories(client, ada))["items"]

    seen = await memories(client, bob)
    deleted = await client.delete(f"{MEMORIES}/{memory['id']}", headers=bob)
    reply = await say(app, client, bob, "What is my name?")
    anonymous = await client.get(MEMORIES)

    assert seen["items"] == []
    assert (deleted.status_code, deleted.json()) == (404, {"detail": "Memory not found"})
    assert "I know about you" not in reply
    assert (await memories(client, ada))["items"] == [memory]
    assert anonymous.status_code == 401


async def test_deleting_the_account_erases_its_memories(
    app_client: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    app, client = app_client
    headers = await signed_up(client, new_email())
    user_id = UUID((await client.get("/api/v1/users/me", headers=headers)).json()["id"])
    await say(app, client, headers, "My name is Ada.")
    store = app.state.container.memory_store()
    assert len((await store.list_page(user_id, limit=10)).items) == 1

    deleted = await client.delete("/api/v1/users/me", headers=headers)

    assert deleted.status_code == 204
    assert (await store.list_page(user_id, limit=10)).items == []


async def test_memory_can_be_turned_off(start_app: AppFactory) -> None:
    app, client = await start_app(memory={"enabled": False})
    headers = await signed_up(client, new_email())

    await say(app, client, headers, "My name is Ada.")
    reply = await say(app, client, headers, "What is my name?")

    assert (await memories(client, headers))["items"] == []
    assert "I know about you" not in reply


async def test_a_model_extracts_facts_and_is_shown_them_in_a_later_session(start_app: AppFactory) -> None:
    with FakeOpenAIServer() as model:
        model.script(
            FakeReply(text="Nice to meet you, Grace."),
            FakeReply(text='```json\n["The user\'s name is Grace Hopper", 42, "The user codes in COBOL"]```'),
            FakeReply(text="You are Grace."),
            FakeReply(text="[]"),
        )
        app, client = await start_app(
            memory={"enabled": True}, llm={"api_key": "test-key", "base_url": model.base_url, "model": "fake"}
        )
        headers = await signed_up(client, new_email())

        await say(app, client, headers, "Hi, I'm Grace Hopper and I write COBOL.")
        second = await say(app, client, headers, "Who am I?")

        assert second == "You are Grace."
        assert sorted(m["text"] for m in (await memories(client, headers))["items"]) == [
            "The user codes in COBOL",
            "The user's name is Grace Hopper",
        ]
        turn, extraction, later, _ = model.requests
        assert (bool(extraction.body.get("stream")), "tools" in extraction.body) == (False, False)
        assert extraction.body.get("max_completion_tokens") == FACTS_MAX_TOKENS
        assert extraction.messages[0] == {"role": "system", "content": FACTS_PROMPT}
        assert extraction.messages[1]["content"] == "Hi, I'm Grace Hopper and I write COBOL."
        assert MEMORIES_HEADING not in turn.messages[0]["content"]
        system = later.messages[0]["content"]
        assert MEMORIES_HEADING in system
        assert "- The user's name is Grace Hopper" in system
        assert "- The user codes in COBOL" in system


async def test_semantic_recall_without_an_api_key_stops_start_up_saying_why(start_app: AppFactory) -> None:
    with pytest.raises(ConfigurationError, match="MEMORY_EMBEDDING_MODEL needs LLM_API_KEY"):
        await start_app(memory={"enabled": True, "embedding_model": "text-embedding-3-small"})
