"""An ASGI app served by uvicorn on 127.0.0.1 in a thread of the test process: the fakes of
services outside the machine (the OpenAI API, an MCP server over HTTP) run on it."""

from __future__ import annotations

import socket
import threading
import time
from typing import Literal

import uvicorn
from starlette.types import ASGIApp


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
