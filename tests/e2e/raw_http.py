"""A real uvicorn server in the test's event loop, and a raw HTTP/1.1 client for it.

HTTP client libraries send a request whole and promptly; the slow-client tests need to
send half a head, trickle a body or stall, and to see exactly when the server closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Mapping
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import uvicorn
from fastapi import FastAPI


@contextlib.asynccontextmanager
async def serving(
    app: FastAPI, options: Mapping[str, Any], *, keep_alive_seconds: int = 5
) -> AsyncIterator[str]:
    """Serve ``app`` (not started yet) on 127.0.0.1 with uvicorn ``options`` (``parley serve``'s:
    ``cli.server_options``); yields the base URL. The server runs the app's lifespan, as in
    production, and waits at most 1 s for connections when it stops."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    config = uvicorn.Config(
        app,
        **{**options, "timeout_graceful_shutdown": 1},
        lifespan="on",
        timeout_keep_alive=keep_alive_seconds,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[listener]))
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert not task.done(), "the server stopped during start-up"
            assert time.monotonic() < deadline, "the server did not start in time"
            await asyncio.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=30)
        listener.close()


class RawConnection:
    """One TCP connection to the server: ``send`` bytes, read from ``reader``."""

    def __init__(self, base_url: str) -> None:
        self._address = urlsplit(base_url)
        self.reader: asyncio.StreamReader
        self._writer: asyncio.StreamWriter

    async def __aenter__(self) -> RawConnection:
        self.reader, self._writer = await asyncio.open_connection(self._address.hostname, self._address.port)
        return self

    async def __aexit__(self, *_: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._writer.close()
        with contextlib.suppress(OSError):
            await self._writer.wait_closed()

    async def send(self, data: bytes) -> None:
        self._writer.write(data)
        await self._writer.drain()

    async def read_until_closed(self, seconds: float) -> bytes:
        """Everything the server sends until it closes the connection, which must happen
        within ``seconds`` (else ``TimeoutError``)."""
        received = bytearray()
        async with asyncio.timeout(seconds):
            with contextlib.suppress(ConnectionResetError):
                while chunk := await self.reader.read(65536):
                    received += chunk
        return bytes(received)

    async def closed_within(self, seconds: float) -> bool:
        """Whether the server closes the connection within ``seconds`` (whatever it sends
        before closing is read and discarded)."""
        try:
            await self.read_until_closed(seconds)
        except TimeoutError:
            return False
        return True


async def read_response(reader: asyncio.StreamReader, *, timeout: float) -> tuple[int, dict[str, str], bytes]:
    """Status, headers (lower-case names) and body of one response with a Content-Length."""
    async with asyncio.timeout(timeout):
        head = await reader.readuntil(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").rstrip("\r\n").split("\r\n")
        headers: dict[str, Any] = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        body = await reader.readexactly(int(headers.get("content-length", "0")))
    return int(status_line.split()[1]), headers, body
