"""The SSE response class: sse-starlette's, without a cancel scope per event."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
from sse_starlette import ServerSentEvent
from starlette.types import Message

from parley.adapters.inbound.http.sse import EventStream


async def _two_events() -> AsyncIterator[ServerSentEvent]:
    yield ServerSentEvent(event="token", data="a")
    yield ServerSentEvent(event="token", data="b")


async def _run(response: EventStream) -> list[Message]:
    sent: list[Message] = []
    disconnected = asyncio.Event()

    async def receive() -> Message:
        await disconnected.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "headers": []}
    await response(scope, receive, send)
    return sent


def _counting_scopes(monkeypatch: pytest.MonkeyPatch) -> list[float | None]:
    opened: list[float | None] = []
    real = anyio.move_on_after

    def counting(delay: float | None, *args: Any, **kwargs: Any) -> anyio.CancelScope:
        opened.append(delay)
        return real(delay, *args, **kwargs)

    monkeypatch.setattr("sse_starlette.sse.anyio.move_on_after", counting)
    return opened


async def test_events_are_sent_without_a_cancel_scope_each_when_there_is_no_send_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    opened = _counting_scopes(monkeypatch)

    sent = await _run(EventStream(_two_events(), ping=0, sep="\n"))

    bodies = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    assert bodies.replace(b"\r\n", b"\n") == b"event: token\ndata: a\n\nevent: token\ndata: b\n\n"
    assert sent[-1] == {"type": "http.response.body", "body": b"", "more_body": False}
    assert None not in opened  # sse-starlette opens move_on_after(None) per event


async def test_a_send_timeout_still_applies_when_one_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    opened = _counting_scopes(monkeypatch)

    await _run(EventStream(_two_events(), ping=0, sep="\n", send_timeout=5.0))

    assert opened.count(5.0) == 2
