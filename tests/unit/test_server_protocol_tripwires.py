"""Tripwires: the uvicorn internals that ``HeaderTimeoutHttpToolsProtocol`` relies on.

``adapters/inbound/http/server_protocol.py`` subclasses uvicorn's ``HttpToolsProtocol`` to
bound request heads, overriding parser callbacks and reading private state. uvicorn does
not promise any of it. If an upgrade renames, removes or re-signs one of these, or stops
calling them when the protocol assumes, these tests fail here, by name, instead of the
header bound silently vanishing (or every connection breaking) in production.
"""

from __future__ import annotations

import asyncio
import inspect
import tomllib
from collections import deque
from importlib.metadata import version
from pathlib import Path
from typing import Any, cast

import pytest
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import Server, ServerState

from parley.adapters.inbound.http.server_protocol import header_timeout_protocol

pytestmark = pytest.mark.unit

CHECKED_UVICORN = "0.54"  # the minor version server_protocol.py was checked against
PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"

# Each method the subclass overrides (or extends), with its signature in uvicorn.
OVERRIDDEN = {
    "__init__": (
        "(self, config: 'Config', server_state: 'ServerState', app_state: 'dict[str, Any]', "
        "_loop: 'asyncio.AbstractEventLoop | None' = None) -> 'None'"
    ),
    "connection_made": "(self, transport: 'asyncio.Transport') -> 'None'",
    "connection_lost": "(self, exc: 'Exception | None') -> 'None'",
    "on_message_begin": "(self) -> 'None'",
    "on_headers_complete": "(self) -> 'None'",
    "on_response_complete": "(self) -> 'None'",
}


async def _answer_ok(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


class _Transport(asyncio.Transport):
    """Just enough of a transport for uvicorn's protocol: records writes and closing."""

    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.closing = False
        self.closed_after: bytes | None = None  # what had been written when it was closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += data

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        if not self.closing:
            self.closing, self.closed_after = True, bytes(self.written)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def test_uvicorn_is_the_minor_version_the_overrides_were_checked_against() -> None:
    installed = ".".join(version("uvicorn").split(".")[:2])

    assert installed == CHECKED_UVICORN, (
        f"uvicorn {installed}: re-read uvicorn/protocols/http/httptools_impl.py against "
        "parley/adapters/inbound/http/server_protocol.py, then move CHECKED_UVICORN and "
        "pyproject's upper bound"
    )


def test_pyproject_caps_uvicorn_below_its_next_minor_version() -> None:
    dependencies = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    major, minor = CHECKED_UVICORN.split(".")

    assert [d for d in dependencies if d.startswith("uvicorn")] == [
        f"uvicorn[standard]>=0.30,<{major}.{int(minor) + 1}"
    ]


@pytest.mark.parametrize("name", list(OVERRIDDEN))
def test_httptools_protocol_still_defines_each_overridden_method_with_its_signature(name: str) -> None:
    assert name in vars(HttpToolsProtocol), f"HttpToolsProtocol.{name} is gone (or now inherited)"
    assert str(inspect.signature(getattr(HttpToolsProtocol, name))) == OVERRIDDEN[name]


def test_uvicorn_keeps_a_protocol_factory_it_is_given_and_calls_it_with_keywords() -> None:
    factory = header_timeout_protocol(3.0)
    config = Config(app=_answer_ok, http=cast(Any, factory))
    config.load()

    assert config.http_protocol_class is factory
    startup = inspect.getsource(Server.startup)
    assert "config.http_protocol_class(" in startup
    for keyword in ("config=config", "server_state=self.server_state", "app_state=", "_loop=_loop"):
        assert keyword in startup, keyword


async def test_the_parser_calls_back_at_a_heads_first_byte_and_end_and_at_the_response_end() -> None:
    calls: list[str] = []

    class Recording(HttpToolsProtocol):
        def on_message_begin(self) -> None:
            calls.append("begin")
            super().on_message_begin()

        def on_headers_complete(self) -> None:
            calls.append("head")
            super().on_headers_complete()

        def on_response_complete(self) -> None:
            calls.append("response")
            super().on_response_complete()

    protocol = Recording(config=Config(app=_answer_ok), server_state=ServerState(), app_state={})
    transport = _Transport()
    protocol.connection_made(transport)

    protocol.data_received(b"GET / HT")
    begun = list(calls)
    protocol.data_received(b"TP/1.1\r\nHost: parley\r\n\r\n")
    for _ in range(10):  # the request runs in a task of its own
        await asyncio.sleep(0)

    assert begun == ["begin"]
    assert calls == ["begin", "head", "response"]
    assert transport.written.startswith(b"HTTP/1.1 200 OK\r\n")
    # The state the subclass reads.
    assert protocol.transport is transport
    assert protocol.loop is asyncio.get_running_loop()
    assert isinstance(protocol.pipeline, deque)
    assert isinstance(protocol.server_state.default_headers, list)
    assert protocol.timeout_keep_alive_task is not None  # idle connections: still uvicorn's keep-alive
    protocol.connection_lost(None)
