"""Slow clients: a connection that stalls (or trickles) its request head is closed, a request
whose body stalls is ended with 408, a slow but steady client is served, and an idle
keep-alive connection is still closed by uvicorn's keep-alive.

The first tests drive the ASGI app with hand-written ``receive`` callables; the others talk
raw HTTP/1.1 over sockets to a real uvicorn server on 127.0.0.1, built as ``parley serve``
builds it, with short bounds. Bounds are asserted with generous upper margins (the test
machine is busy), never by loosening the production defaults.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.types import Message

from parley.cli import server_options
from parley.main import create_app
from tests.e2e.conftest import PASSWORD, AppFactory, Capture, make_settings, signed_up
from tests.e2e.raw_asgi import post_scope
from tests.e2e.raw_http import RawConnection, read_response, serving
from tests.e2e.test_chat_api import CHAT, new_session
from tests.e2e.test_metrics import _samples, _value

pytestmark = pytest.mark.e2e

LOGIN = "/api/v1/auth/login"
REGISTER = "/api/v1/auth/register"
TIMED_OUT_BODY = b'{"detail":"Request timeout"}\n'
SHORT = 0.5  # seconds: the bounds of the tests that wait for one to pass
MARGIN = 5.0  # seconds a bound may be overshot on a loaded machine before a test fails


Served = Callable[..., AbstractAsyncContextManager[str]]


@pytest.fixture
def served(e2e_database_url: str, tmp_path: Path) -> Served:
    """``async with served(**settings) as base_url``: ``create_app`` behind a real server, as
    ``parley serve`` runs it (its uvicorn options, its HTTP protocol)."""

    def serve(*, keep_alive_seconds: int = 5, **overrides: Any) -> AbstractAsyncContextManager[str]:
        settings = make_settings(e2e_database_url, tmp_path, **overrides)
        return serving(create_app(settings), server_options(settings), keep_alive_seconds=keep_alive_seconds)

    return serve


@pytest.mark.parametrize(
    ("path", "content_type", "first_chunk"),
    [
        (LOGIN, "application/json", b'{"email": "ada@exa'),
        (LOGIN, "application/x-www-form-urlencoded", b"username=ada%40exa"),
        (REGISTER, "application/json", b'{"email": "ada@exa'),  # a body FastAPI reads for the route
    ],
)
async def test_a_body_that_stalls_is_ended_with_408_and_connection_close(
    start_app: AppFactory, capture_logs: Capture, path: str, content_type: str, first_chunk: bytes
) -> None:
    buffer = capture_logs(json_lines=True)
    app, client = await start_app(http={"body_timeout_seconds": 0.2})
    chunks: list[Message] = [{"type": "http.request", "body": first_chunk, "more_body": True}]
    sent: list[Message] = []

    async def stalling_receive() -> Message:
        if chunks:
            return chunks.pop()
        await asyncio.Event().wait()  # the client sends nothing more, and stays
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        sent.append(message)

    await asyncio.wait_for(
        app(post_scope(path, content_type=content_type), stalling_receive, send), timeout=10
    )

    starts = [m for m in sent if m["type"] == "http.response.start"]
    assert [m["status"] for m in starts] == [408]
    assert (b"connection", b"close") in starts[0]["headers"]
    assert [m["body"] for m in sent if m["type"] == "http.response.body"] == [TIMED_OUT_BODY]
    samples = _samples((await client.get("/metrics")).text)
    assert _value(samples, "parley_http_requests_total", route=path, status="408") == 1
    assert "Unhandled error" not in buffer.getvalue()


async def test_a_streamed_reply_outlasting_the_body_timeout_is_not_cut(start_app: AppFactory) -> None:
    """Once the body is in, ``receive`` is where the app waits for the client to leave:
    the body timeout must not end a reply that takes longer than it."""
    _, client = await start_app(http={"body_timeout_seconds": 0.2}, llm={"offline_token_delay_ms": 40})
    headers = await signed_up(client, f"stream-{uuid.uuid4().hex[:8]}@example.com")
    session_id = (await new_session(client, headers))["id"]
    began = time.monotonic()

    response = await client.post(
        f"{CHAT}/{session_id}/messages/stream", headers=headers, json={"content": "tell me a story"}
    )

    assert response.status_code == 200
    assert "event: done" in response.text
    assert time.monotonic() - began > 0.2  # it did outlast the timeout


async def test_a_real_server_answers_a_stalled_body_with_408_and_closes(served: Served) -> None:
    async with (
        served(http={"body_timeout_seconds": SHORT}) as base_url,
        RawConnection(base_url) as connection,
    ):
        await connection.send(
            b"POST /api/v1/auth/login HTTP/1.1\r\nHost: parley\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100\r\n\r\n" + b'{"email": '
        )
        began = time.monotonic()

        status, headers, body = await read_response(connection.reader, timeout=SHORT + MARGIN)
        closed = await connection.closed_within(MARGIN)

        assert status == 408
        assert headers["connection"] == "close"
        assert body == TIMED_OUT_BODY
        assert closed
        assert SHORT * 0.8 <= time.monotonic() - began <= SHORT + MARGIN
        async with httpx.AsyncClient(base_url=base_url) as client:
            samples = _samples((await client.get("/metrics")).text)
        assert _value(samples, "parley_http_requests_total", route=LOGIN, status="408") == 1


async def test_a_real_server_serves_a_slow_but_steady_client(served: Served) -> None:
    """The head in pieces, the body in pieces each within the pause allowed: served, and
    the connection stays open for the next request, though the whole took longer than
    either bound."""
    email = f"slow-{uuid.uuid4().hex[:8]}@example.com"
    body = json.dumps({"email": email, "password": PASSWORD}).encode()
    head = (
        f"POST {REGISTER} HTTP/1.1\r\nHost: parley\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    async with (
        served(http={"header_timeout_seconds": 1.0, "body_timeout_seconds": 1.0}) as base_url,
        RawConnection(base_url) as connection,
    ):
        began = time.monotonic()
        for start in range(0, len(head), len(head) // 3 + 1):
            await connection.send(head[start : start + len(head) // 3 + 1])
            await asyncio.sleep(0.1)
        for start in range(0, len(body), 8):  # 0.3 s pauses, under the 1 s allowed
            await connection.send(body[start : start + 8])
            await asyncio.sleep(0.3)

        status, _, answer = await read_response(connection.reader, timeout=MARGIN)
        assert time.monotonic() - began > 2.0
        await connection.send(b"GET /health HTTP/1.1\r\nHost: parley\r\n\r\n")
        again, _, _ = await read_response(connection.reader, timeout=MARGIN)

    assert status == 201, answer
    assert json.loads(answer)["email"] == email
    assert again == 200


HALF_HEADS = [
    b"",  # connects and sends nothing
    b"GET /hea",  # half a request line
    b"GET /health HTTP/1.1\r\nHost: parley\r\nAccept: appl",  # half the headers
]


@pytest.mark.parametrize("sent", HALF_HEADS, ids=["nothing", "half-request-line", "half-headers"])
async def test_a_connection_that_stalls_before_its_head_is_complete_is_closed(
    served: Served, sent: bytes
) -> None:
    async with (
        served(http={"header_timeout_seconds": SHORT}) as base_url,
        RawConnection(base_url) as connection,
    ):
        began = time.monotonic()
        await connection.send(sent)

        answer = await connection.read_until_closed(SHORT + MARGIN)

        assert SHORT * 0.8 <= time.monotonic() - began <= SHORT + MARGIN
    if sent:
        assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
        assert b"\r\nconnection: close\r\n" in answer
        assert answer.endswith(b"\r\n\r\n" + TIMED_OUT_BODY)
    else:
        assert answer == b""  # nothing asked, nothing answered


async def test_a_head_trickled_a_byte_at_a_time_is_bounded_like_a_stall(served: Served) -> None:
    head = b"GET /health HTTP/1.1\r\nHost: parley\r\n" + b"X-Padding: " + b"x" * 200 + b"\r\n\r\n"
    async with (
        served(http={"header_timeout_seconds": SHORT}) as base_url,
        RawConnection(base_url) as connection,
    ):

        async def trickle() -> None:
            with contextlib.suppress(OSError):
                for byte in head:  # 0.05 s apart: the whole head would take 12 s
                    await connection.send(bytes([byte]))
                    await asyncio.sleep(0.05)

        trickling = asyncio.create_task(trickle())
        began = time.monotonic()
        try:
            answer = await connection.read_until_closed(SHORT + MARGIN)
            elapsed = time.monotonic() - began
        finally:
            trickling.cancel()

    assert answer.startswith(b"HTTP/1.1 408 ")
    assert SHORT * 0.8 <= elapsed <= SHORT + MARGIN


async def test_a_kept_alive_connection_that_stalls_in_its_next_head_is_closed(served: Served) -> None:
    """uvicorn's keep-alive timer stops at the next request's first byte; the head bound,
    counted from the previous response, still closes the connection."""
    async with (
        served(http={"header_timeout_seconds": SHORT}) as base_url,
        RawConnection(base_url) as connection,
    ):
        await connection.send(b"GET /health HTTP/1.1\r\nHost: parley\r\n\r\n")
        status, _, _ = await read_response(connection.reader, timeout=MARGIN)
        began = time.monotonic()
        await connection.send(b"GET /health HTTP/1.1\r\nHo")

        answer = await connection.read_until_closed(SHORT + MARGIN)

        assert time.monotonic() - began <= SHORT + MARGIN
    assert status == 200
    assert answer.startswith(b"HTTP/1.1 408 ")


async def test_an_idle_kept_alive_connection_is_still_closed_by_uvicorns_keep_alive(served: Served) -> None:
    """The head bound (30 s here) leaves idle connections to uvicorn's keep-alive (1 s here)."""
    async with (
        served(keep_alive_seconds=1, http={"header_timeout_seconds": 30.0}) as base_url,
        RawConnection(base_url) as connection,
    ):
        await connection.send(b"GET /health HTTP/1.1\r\nHost: parley\r\n\r\n")
        status, _, _ = await read_response(connection.reader, timeout=MARGIN)
        began = time.monotonic()

        answer = await connection.read_until_closed(1 + MARGIN)

        assert 0.8 <= time.monotonic() - began <= 1 + MARGIN
    assert status == 200
    assert answer == b""
