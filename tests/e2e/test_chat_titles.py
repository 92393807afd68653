"""Auto-named chats through the API, on real PostgreSQL: with the offline model (its title is
ready at once, so it is stored with the first reply and the stream's ``done`` carries the renamed
session), and with a model on a local fake OpenAI-compatible server (the title arrives later,
in the background)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from parley.adapters.outbound.langgraph.titles import TITLE_MAX_TOKENS, TITLE_PROMPT
from parley.application.chat.titles import ChatTitles
from tests.e2e.conftest import AppFactory, signed_up
from tests.e2e.sse_client import parse_events
from tests.e2e.test_auth_api import new_email
from tests.fakes.openai_server import FakeOpenAIServer, FakeReply

pytestmark = pytest.mark.e2e
CHAT = "/api/v1/chat/sessions"


async def new_session(client: httpx.AsyncClient, headers: dict[str, str], name: str | None = None) -> str:
    response = await client.post(CHAT, headers=headers, json={"name": name} if name else None)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def stream(
    client: httpx.AsyncClient, headers: dict[str, str], session_id: str, content: str
) -> dict[str, Any]:
    """The ``done`` event's data (the stream must end with it)."""
    response = await client.post(
        f"{CHAT}/{session_id}/messages/stream", headers=headers, json={"content": content}
    )
    events = parse_events(response.text)
    assert events[-1][0] == "done", response.text
    assert {name for name, _ in events} <= {"message", "token", "tool", "done"}
    return events[-1][1]


async def session(client: httpx.AsyncClient, headers: dict[str, str], session_id: str) -> dict[str, Any]:
    response = await client.get(f"{CHAT}/{session_id}", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


@pytest.fixture
async def client(start_app: AppFactory) -> httpx.AsyncClient:
    """The app with auto-naming on, as it is by default (the e2e test settings turn it off)."""
    _, http = await start_app(chat_auto_title=True)
    return http


def titles_of(app: FastAPI) -> ChatTitles:
    titles = app.state.container.chat_titles()
    assert isinstance(titles, ChatTitles)
    return titles


async def test_the_first_exchange_names_the_session_and_the_stream_says_so(client: httpx.AsyncClient) -> None:
    headers = await signed_up(client, new_email())
    session_id = await new_session(client, headers)

    first = await stream(client, headers, session_id, "  Plan a   trip to Lisbon for the whole family")
    second = await stream(client, headers, session_id, "And what about Porto?")

    assert first["session"]["id"] == session_id
    assert first["session"]["name"] == "Plan a trip to Lisbon for"
    assert first["session"]["message_count"] == 2
    assert "session" not in second  # only the first exchange names it
    fetched = await session(client, headers, session_id)
    assert (fetched["name"], fetched["created_at"]) == (
        first["session"]["name"],
        first["session"]["created_at"],
    )


async def test_a_non_streamed_first_exchange_names_the_session(client: httpx.AsyncClient) -> None:
    headers = await signed_up(client, new_email())
    session_id = await new_session(client, headers)

    sent = await client.post(
        f"{CHAT}/{session_id}/messages", headers=headers, json={"content": "What is 17 * 23?"}
    )

    assert sent.status_code == 200, sent.text
    assert set(sent.json()) == {"message", "reply"}
    assert (await session(client, headers, session_id))["name"] == "What is 17 * 23?"


async def test_a_session_named_by_its_user_keeps_its_name(client: httpx.AsyncClient) -> None:
    headers = await signed_up(client, new_email())
    named = await new_session(client, headers, "My own name")
    renamed_back = await new_session(client, headers)
    await client.patch(f"{CHAT}/{renamed_back}", headers=headers, json={"name": "Chosen"})

    done = [await stream(client, headers, s, "hello there") for s in (named, renamed_back)]

    assert ["session" in d for d in done] == [False, False]
    assert [(await session(client, headers, s))["name"] for s in (named, renamed_back)] == [
        "My own name",
        "Chosen",
    ]


async def test_auto_naming_can_be_turned_off(start_app: AppFactory) -> None:
    _, client = await start_app(chat_auto_title=False)
    headers = await signed_up(client, new_email())
    session_id = await new_session(client, headers)

    done = await stream(client, headers, session_id, "hello there")

    assert "session" not in done
    assert (await session(client, headers, session_id))["name"] == "New chat"


async def test_a_model_names_the_session_in_the_background(start_app: AppFactory) -> None:
    with FakeOpenAIServer() as model:
        model.script(
            FakeReply(text="Lisbon in May is lovely."), FakeReply(text='Title: "Lisbon Trip Planning."')
        )
        app, client = await start_app(
            chat_auto_title=True, llm={"api_key": "test-key", "base_url": model.base_url, "model": "fake"}
        )
        headers = await signed_up(client, new_email())
        session_id = await new_session(client, headers)

        done = await stream(client, headers, session_id, "Help me plan a trip to Lisbon")
        await titles_of(app).idle()

        assert done["message"]["content"] == "Lisbon in May is lovely."
        assert (await session(client, headers, session_id))["name"] == "Lisbon Trip Planning"
        turn, title = model.requests
        assert (bool(turn.body.get("stream")), bool(title.body.get("stream"))) == (True, False)
        assert "tools" not in title.body
        assert title.body.get("max_completion_tokens") == TITLE_MAX_TOKENS
        assert title.messages[0] == {"role": "system", "content": TITLE_PROMPT}
        assert "Help me plan a trip to Lisbon" in title.messages[1]["content"]
        assert "Lisbon in May is lovely." in title.messages[1]["content"]


async def test_a_failing_title_model_leaves_the_default_name(start_app: AppFactory) -> None:
    with FakeOpenAIServer() as model:
        model.script(FakeReply(text="Sure."), FakeReply(status=500))
        app, client = await start_app(
            chat_auto_title=True, llm={"api_key": "test-key", "base_url": model.base_url, "model": "fake"}
        )
        headers = await signed_up(client, new_email())
        session_id = await new_session(client, headers)

        sent = await client.post(
            f"{CHAT}/{session_id}/messages", headers=headers, json={"content": "hi there"}
        )
        await titles_of(app).idle()

        assert sent.status_code == 200, sent.text
        assert len(model.requests) == 2
        assert (await session(client, headers, session_id))["name"] == "New chat"
