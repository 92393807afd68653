"""uvicorn's httptools protocol with a bound on request heads (slowloris).

uvicorn (0.54) closes a connection only when it idles between requests (keep-alive), and
its keep-alive timer stops at the first byte of the next request. A client that sends part
of a request head, or trickles it a byte at a time, holds its connection forever. No uvicorn
option bounds that, and no ASGI middleware can: the app is called once the head is complete.

:class:`HeaderTimeoutHttpToolsProtocol` adds one timer per connection. It starts whenever the
connection waits for a request head (on connecting, and when a response completes on a
connection kept alive) and stops when a head is complete; bytes arriving do not restart it,
so a trickle is bounded like a stall. When it fires, the connection is closed:

- with a 408 ``{"detail": "Request timeout"}`` and ``Connection: close`` when part of a head
  has arrived;
- silently when nothing has: a client about to reuse an idle connection could take a stray
  408 for the answer to its next request (uvicorn's keep-alive closes silently too).

An idle kept-alive connection is still closed by uvicorn's keep-alive (5 s) first, as long
as the header bound is longer.

This overrides uvicorn internals: the parser callbacks ``on_message_begin`` and
``on_headers_complete``, ``on_response_complete``, the ``pipeline`` of queued requests and
``server_state.default_headers``. pyproject caps uvicorn below its next minor version, and
``tests/unit/test_server_protocol_tripwires.py`` fails by name if any of them changes
(entry 9 of ``docs/upstream-overrides.md``).
"""

from __future__ import annotations

import asyncio
import functools
import http
from collections.abc import Callable
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from parley.adapters.inbound.http.errors import REQUEST_TIMEOUT
from parley.adapters.inbound.http.json_response import NewlineJSONResponse

ProtocolFactory = Callable[..., asyncio.Protocol]


def header_timeout_protocol(header_timeout: float) -> ProtocolFactory:
    """What ``parley serve`` gives uvicorn as its HTTP protocol: the class, bound to its timeout.

    uvicorn only calls what it is given (``config=..., server_state=..., app_state=...,
    _loop=...``). A ``functools.partial`` of the module-level class, rather than a subclass
    made at run time, because ``--workers`` and ``--reload`` pickle uvicorn's config into
    each new process, and a partial pickles as a reference to the class.
    """
    return functools.partial(HeaderTimeoutHttpToolsProtocol, header_timeout=header_timeout)


class HeaderTimeoutHttpToolsProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` that closes a connection which sends no complete request head
    within ``header_timeout`` seconds (see the module docstring)."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        header_timeout: float,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.header_timeout = header_timeout
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_begun = False  # some bytes of the awaited head have arrived

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_awaiting_head()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        self._head_begun = True
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self._stop_awaiting_head()
        self._head_begun = False
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        # A queued (pipelined) request has its head already; it starts instead of waiting.
        next_head_in = bool(self.pipeline)
        super().on_response_complete()
        if not next_head_in and not self.transport.is_closing():
            self._await_head()

    def _await_head(self) -> None:
        self._stop_awaiting_head()
        self._head_timer = self.loop.call_later(self.header_timeout, self._on_head_timeout)

    def _stop_awaiting_head(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _on_head_timeout(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        self.logger.debug(
            "Closing a connection from %s: no complete request head in %s s", self.client, self.header_timeout
        )
        if self._head_begun:
            self.transport.write(_request_timeout(self.server_state.default_headers))
        self.transport.close()


_TIMED_OUT = NewlineJSONResponse(
    {"detail": REQUEST_TIMEOUT}, status_code=408, headers={"Connection": "close"}
)


def _request_timeout(default_headers: list[tuple[bytes, bytes]]) -> bytes:
    """The raw 408 response: uvicorn's default headers (``server``, ``date``), then the body's."""
    status = http.HTTPStatus.REQUEST_TIMEOUT
    lines = [f"HTTP/1.1 {status.value} {status.phrase}".encode()]
    lines += [name + b": " + value for name, value in (*default_headers, *_TIMED_OUT.raw_headers)]
    return b"\r\n".join(lines) + b"\r\n\r\n" + _TIMED_OUT.body
