"""A client that leaves mid-stream: generation stops and the partial reply is kept.

httpx's ASGI transport buffers whole responses, so this drives the ASGI app
directly and sends ``http.disconnect`` once the first tokens have gone out.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import AppFactory, signed_up
from tests.e2e.raw_asgi import post_scope
from tests.e2e.test_auth_api import new_email
from tests.e2e.test_chat_api import CHAT, new_session
from tests.fakes.openai_server import FakeOpenAIServer, FakeReply

pytestmark = pytest.mark.e2e


async def _stream_then_leave(app: Any, path: str, headers: dict[str, str], content: str) -> list[bytes]:
    """POST to ``path``, read until two token events went out, then disconnect."""
    body = json.dumps({"content": content}).encode()
    extra = [(b"content-length", str(len(body)).encode())]
    extra += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    scope = post_scope(path, headers=extra)
    chunks: list[bytes] = []
    leave = asyncio.Event()
    sent_body = False

    async def receive() -> dict[str, Any]:
        nonlocal sent_body
        if not sent_body:
            sent_body = True
            return {"type": "http.request", "body": body, "more_body": False}
        await leave.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))
            if b"".join(chunks).count(b"event: token") >= 2:
                leave.set()

    await asyncio.wait_for(app(scope, receive, send), timeout=10)
    return chunks


async def test_leaving_mid_stream_stops_generation_and_stores_an_incomplete_reply(
    start_app: AppFactory,
) -> None:
    app, client = await start_app(llm={"offline_token_delay_ms": 30})
    headers = await signed_up(client, new_email())
    session_id = (await new_session(client, headers))["id"]

    chunks = await _stream_then_leave(
        app, f"{CHAT}/{session_id}/messages/stream", headers, "tell me a long story"
    )

    text = b"".join(chunks).decode()
    assert "event: done" not in text
    items = await _messages(client, headers, session_id)
    assert [(m["role"], m["status"]) for m in items] == [("user", "complete"), ("assistant", "incomplete")]
    full_reply = '[offline model] I remember 0 earlier user message(s). You said: "tell me a long story"'
    partial = items[1]["content"]
    assert partial.startswith("[offline")
    assert full_reply.startswith(partial)
    assert len(partial) < len(full_reply)  # generation stopped before the end
    follow_up = await client.post(f"{CHAT}/{session_id}/messages", headers=headers, json={"content": "again"})
    assert follow_up.status_code == 200  # the reply slot was released


async def _messages(
    client: httpx.AsyncClient, headers: dict[str, str], session_id: str
) -> list[dict[str, Any]]:
    response = await client.get(f"{CHAT}/{session_id}/messages", headers=headers)
    return response.json()["items"]  # type: ignore[no-any-return]


async def test_leaving_mid_stream_closes_the_upstream_model_request(start_app: AppFactory) -> None:
    """Through every layer (SSE, turn, LangGraph, ChatOpenAI over HTTP): the model server
    sees its request closed soon after the client leaves, not when the reply would end."""
    with FakeOpenAIServer(FakeReply(text="word " * 400, token_delay=0.05)) as model:
        app, client = await start_app(
            llm={"api_key": "test-key", "base_url": model.base_url, "model": "fake"}
        )
        headers = await signed_up(client, new_email())
        session_id = (await new_session(client, headers))["id"]

        await _stream_then_leave(app, f"{CHAT}/{session_id}/messages/stream", headers, "go")

        assert await model.wait_for_disconnect(timeout=1.0)  # the whole reply would take 20 s
        assert not model.requests[-1].completed
        items = await _messages(client, headers, session_id)
        assert [(m["role"], m["status"]) for m in items] == [
            ("user", "complete"),
            ("assistant", "incomplete"),
        ]
