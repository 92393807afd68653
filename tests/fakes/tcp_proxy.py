"""A TCP proxy on 127.0.0.1 in front of PostgreSQL that a test can cut and restore.

"Database down" is then real from the app's point of view (connections refused and
open ones dropped) without stopping a server other tests share.
"""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import parse_qs, urlsplit, urlunsplit


def _target(url: str) -> tuple[str | None, str, int]:
    """(unix socket path or None, host, port) of a libpq URL."""
    parts = urlsplit(url)
    host_param = parse_qs(parts.query).get("host", [None])[0]
    port = parts.port or 5432
    if host_param and host_param.startswith("/"):
        return f"{host_param}/.s.PGSQL.{port}", "", port
    return None, parts.hostname or "127.0.0.1", port


class CuttableProxy:
    """Forwards ``127.0.0.1:<port>`` to the database of ``upstream_url``.

    ``cut()`` closes the listener and every open connection; ``restore()`` listens again
    on the same port. ``url`` is ``upstream_url`` rewritten to go through the proxy.
    """

    def __init__(self, upstream_url: str) -> None:
        self._upstream_url = upstream_url
        self._socket_path, self._host, self._port = _target(upstream_url)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    @property
    def url(self) -> str:
        parts = urlsplit(self._upstream_url)
        user = parts.username or "postgres"
        auth = f"{user}:{parts.password}@" if parts.password else f"{user}@"
        return urlunsplit((parts.scheme, f"{auth}127.0.0.1:{self.port}", parts.path, "", ""))

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.close()
        self._writers.clear()

    async def restore(self) -> None:
        await self.start()

    async def _handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            if self._socket_path:
                up_reader, up_writer = await asyncio.open_unix_connection(self._socket_path)
            else:
                up_reader, up_writer = await asyncio.open_connection(self._host, self._port)
        except OSError:
            client_writer.close()
            return
        self._writers.update({client_writer, up_writer})
        await asyncio.gather(self._pipe(client_reader, up_writer), self._pipe(up_reader, client_writer))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError, ConnectionError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()
        self._writers.discard(writer)
