"""The header bound of ``parley serve``'s HTTP protocol, on a fake transport.

The end-to-end tests (``tests/e2e/test_slow_clients.py``) show the bound on real sockets;
these pin what a socket test cannot time reliably: the bound covers heads only, never the
app's time nor a pipelined request whose head is already in, and it runs again from the
last answer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
from uvicorn.config import Config
from uvicorn.server import ServerState

from parley.adapters.inbound.http.server_protocol import HeaderTimeoutHttpToolsProtocol
from tests.unit.test_server_protocol_tripwires import _Transport

pytestmark = pytest.mark.unit

BOUND = 0.05
APP_SECONDS = 4 * BOUND
GET = b"GET / HTTP/1.1\r\nHost: parley\r\n\r\n"
OK = b"HTTP/1.1 200 OK\r\n"


async def _slow_answer(scope: Any, receive: Any, send: Any) -> None:
    await asyncio.sleep(APP_SECONDS)
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


def _connected() -> tuple[HeaderTimeoutHttpToolsProtocol, _Transport]:
    protocol = HeaderTimeoutHttpToolsProtocol(
        config=Config(app=_slow_answer, timeout_keep_alive=60),
        server_state=ServerState(),
        app_state={},
        header_timeout=BOUND,
    )
    transport = _Transport()
    protocol.connection_made(transport)
    return protocol, transport


async def _until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.005)


async def test_an_app_slower_than_the_bound_is_answered_in_full_before_any_close() -> None:
    protocol, transport = _connected()

    protocol.data_received(GET)
    await _until(lambda: transport.closing)  # the idle connection, once answered

    assert transport.closed_after is not None
    assert transport.closed_after.startswith(OK)
    assert transport.closed_after.endswith(b"\r\n\r\nok")  # closed silently, after the answer


async def test_pipelined_requests_slower_than_the_bound_are_all_answered() -> None:
    protocol, transport = _connected()

    protocol.data_received(GET * 2)
    await _until(lambda: transport.written.count(OK) == 2)

    assert b" 408 " not in transport.written
    assert not transport.closing
    protocol.connection_lost(None)


async def test_the_bound_runs_again_from_the_last_answer() -> None:
    protocol, transport = _connected()
    protocol.data_received(GET)
    await _until(lambda: transport.written.endswith(b"ok"))
    answered = time.monotonic()

    protocol.data_received(b"GET / HT")
    await _until(lambda: transport.closing)

    assert transport.written.endswith(b'\r\n\r\n{"detail":"Request timeout"}\n')
    assert b"okHTTP/1.1 408 Request Timeout\r\n" in transport.written
    assert time.monotonic() - answered >= BOUND * 0.8
