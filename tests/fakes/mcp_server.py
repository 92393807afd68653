"""A small MCP server for tests, written with the ``mcp`` SDK's FastMCP, over both transports.

Tools: ``shout(text)`` (the text upper-cased, with ``!``), ``hang()`` (never answers) and
``die()`` (the server process exits mid-call; only meant for the stdio transport).

- stdio: ``[sys.executable, "-m", "tests.fakes.mcp_server"]`` (see :func:`stdio_entry`);
- streamable HTTP: :class:`FakeMcpHttpServer`, uvicorn on 127.0.0.1 in a daemon thread (as
  ``tests/fakes/openai_server.py``), on a free port or a given one (to restart a stopped
  server where its clients expect it).
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from mcp.server.fastmcp import FastMCP

from tests.fakes.threaded_server import ThreadedServer

REPOSITORY = Path(__file__).resolve().parents[2]


def build_server() -> FastMCP:
    """A fresh FastMCP server with the fake tools (an HTTP session manager runs only once)."""
    server = FastMCP("parley-fake", log_level="WARNING")

    @server.tool()
    def shout(text: str) -> str:
        """Return the text in capitals, with an exclamation mark."""
        return f"{text.upper()}!"

    @server.tool()
    async def hang() -> str:
        """Never answer (until cancelled)."""
        await asyncio.Event().wait()
        return "unreachable"

    @server.tool()
    def die() -> str:
        """End the server's process without answering."""
        os._exit(3)

    return server


def stdio_entry() -> dict[str, Any]:
    """The configuration entry that runs this module as a stdio MCP server."""
    return {
        "transport": "stdio",
        "command": sys.executable,
        "args": ["-m", "tests.fakes.mcp_server"],
        "cwd": str(REPOSITORY),
    }


class FakeMcpHttpServer:
    """Start with ``with FakeMcpHttpServer() as server:``; ``url`` is its streamable HTTP endpoint."""

    def __init__(self, port: int = 0) -> None:
        self._port = port
        self._server: ThreadedServer | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the fake MCP server is not started")
        return self._server.address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    def start(self) -> None:
        # lifespan on: it runs the MCP session manager.
        app = build_server().streamable_http_app()
        self._server = ThreadedServer(app, name="fake MCP server", port=self._port, lifespan="on")
        self._server.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
        self._server = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


if __name__ == "__main__":
    build_server().run("stdio")
