"""An ASGI app served by uvicorn on 127.0.0.1 in a thread of the test process: the fakes of
services outside the machine (the OpenAI, Anthropic and Ollama APIs, an MCP server over HTTP) run
on it; :class:`ScriptedService` is the scripted replies and recorded requests those fakes share."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import deque
from types import TracebackType
from typing import Any, Generic, Literal, Self, TypeVar

import uvicorn
from starlette.types import ASGIApp, Receive, Send


class ThreadedServer:
    """``start()`` returns once the server accepts connections; ``stop()`` exits at once (a
    hanging request would hold a graceful shutdown). ``port=0``: a free port."""

    def __init__(
        self, app: ASGIApp, *, name: str, port: int = 0, lifespan: Literal["on", "off"] = "off"
    ) -> None:
        self._app, self._name, self._port, self._lifespan = app, name, port, lifespan
        self._socket: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        if self._socket is None:
            raise RuntimeError(f"the {self._name} is not started")
        host, port = self._socket.getsockname()[:2]
        return str(host), int(port)

    def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self._port))
        config = uvicorn.Config(
            self._app,
            interface="asgi3",
            lifespan=self._lifespan,
            log_level="warning",
            access_log=False,
            http="h11",
            loop="asyncio",
        )
        self._socket, self._server = sock, uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"the {self._name} did not start")
            time.sleep(0.005)

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = self._server.force_exit = True
            self._thread.join(timeout=5)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None


ReplyT = TypeVar("ReplyT")
RecordT = TypeVar("RecordT")


class ScriptedService(Generic[ReplyT, RecordT]):
    """The fake of a service that answers each request with the next scripted reply (else
    ``default``) and records the requests, served by a :class:`ThreadedServer` running ``app``.
    Start with ``with Fake() as server:`` (or ``start()``/``stop()``)."""

    def __init__(self, app: ASGIApp, *, name: str, default: ReplyT) -> None:
        self.default = default
        self._script: deque[ReplyT] = deque()
        self._requests: list[RecordT] = []
        self._lock = threading.Lock()
        self._server = ThreadedServer(app, name=name)

    def script(self, *replies: ReplyT) -> None:
        """Queue replies for the next requests, in order."""
        with self._lock:
            self._script.extend(replies)

    @property
    def requests(self) -> list[RecordT]:
        with self._lock:
            return list(self._requests)

    @property
    def root_url(self) -> str:
        """``http://127.0.0.1:<port>``, the server's root."""
        host, port = self._server.address
        return f"http://{host}:{port}"

    def _take(self, request: RecordT) -> tuple[ReplyT, int]:
        """Record ``request`` (from the server's thread); its reply, and its number from 1."""
        with self._lock:
            self._requests.append(request)
            reply = self._script.popleft() if self._script else self.default
            return reply, len(self._requests)

    def start(self) -> None:
        self._server.start()

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def in_pieces(text: str, count: int) -> list[str]:
    """``text`` cut into ``count`` pieces (fewer when it is shorter), for a streamed reply."""
    size = max(1, -(-len(text) // max(count, 1)))
    return [text[i : i + size] for i in range(0, len(text), size)]


async def read_body(receive: Receive) -> bytes:
    """An ASGI request's whole body."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def send_json(send: Send, status: int, payload: dict[str, Any]) -> None:
    """An ASGI response of one JSON body."""
    await send(
        {"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]}
    )
    await send({"type": "http.response.body", "body": json.dumps(payload).encode()})
