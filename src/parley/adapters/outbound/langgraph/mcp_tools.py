"""Tools from MCP servers, loaded with ``langchain-mcp-adapters``.

The servers are declared in a JSON file (``MCP_CONFIG_FILE``), in the shape Claude Desktop and
``MultiServerMCPClient`` use::

    {"servers": {
        "files": {"transport": "stdio", "command": "python", "args": ["-m", "my_server"]},
        "search": {"transport": "streamable_http", "url": "http://127.0.0.1:9000/mcp"}}}

(``mcpServers`` is accepted for ``servers``; ``transport`` defaults to ``stdio`` when a
``command`` is given, else ``streamable_http``.) A tool is named ``<server>_<tool>``
(``files_read``), so two servers never claim the same name.

Containment: nothing about an MCP server ever fails the start-up or a turn.

- An unreadable file, an invalid entry, or a server that cannot start, answer or list its tools
  within ``timeout`` is logged (one line naming the server) and contributes no tools.
- Every call opens its own session (``MultiServerMCPClient``'s default), so a server that died
  is simply started or reached again by the next call: reconnection costs nothing to track,
  at the price of a session handshake per call (and a process start for a stdio server).
- A call that fails (transport error, server gone, timeout after ``timeout`` seconds) returns
  an error tool result the model can read, as a tool that raises does in the graph's ToolNode.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from langchain_core.tools import BaseTool
from langchain_mcp_adapters.client import MultiServerMCPClient
from langchain_mcp_adapters.interceptors import MCPToolCallRequest, MCPToolCallResult
from langchain_mcp_adapters.sessions import Connection
from mcp.types import CallToolResult, TextContent

_log = logging.getLogger(__name__)

_HTTP_TRANSPORTS = frozenset({"streamable_http", "http", "sse"})
_TRANSPORTS = _HTTP_TRANSPORTS | {"stdio"}
# Tool names are "<server>_<tool>", and model APIs accept only these characters in a tool name.
_SERVER_NAME = re.compile(r"[A-Za-z0-9_-]{1,32}")


class McpConfigError(ValueError):
    """A server entry of the MCP configuration file cannot be used; the message says why."""


@dataclass(frozen=True, slots=True, kw_only=True)
class McpConfig:
    """Where the servers are declared; how long listing a server's tools at start-up may take
    (``connect_timeout``) and one tool call, its session start included (``timeout``)."""

    config_file: Path
    timeout: float = 30.0
    connect_timeout: float = 30.0


def parse_servers(document: Any) -> tuple[dict[str, Connection], dict[str, str]]:
    """The usable connections of a parsed configuration document, and the reason each unusable
    entry was skipped (by server name). Raises :class:`McpConfigError` when the document as a
    whole has no ``servers`` (or ``mcpServers``) object."""
    servers = document.get("servers", document.get("mcpServers")) if isinstance(document, dict) else None
    if not isinstance(servers, dict):
        raise McpConfigError('expected a JSON object with a "servers" object')
    usable: dict[str, Connection] = {}
    skipped: dict[str, str] = {}
    for name, entry in servers.items():
        try:
            if not _SERVER_NAME.fullmatch(name):
                raise McpConfigError(
                    "a server name is 1-32 letters, digits, '_' or '-' (it prefixes tool names)"
                )
            usable[name] = _connection(entry)
        except McpConfigError as error:
            skipped[name] = str(error)
    return usable, skipped


def _connection(entry: Any) -> Connection:
    """One server entry as a ``langchain-mcp-adapters`` connection, checked."""
    if not isinstance(entry, dict):
        raise McpConfigError("entry is not an object")
    transport = entry.get("transport") or ("stdio" if "command" in entry else "streamable_http")
    if transport not in _TRANSPORTS:
        raise McpConfigError(f"unknown transport {transport!r} (one of {', '.join(sorted(_TRANSPORTS))})")
    if transport == "stdio":
        command, args = entry.get("command"), entry.get("args", [])
        if not isinstance(command, str) or not command:
            raise McpConfigError('stdio needs a "command"')
        if not isinstance(args, list) or not all(isinstance(arg, str) for arg in args):
            raise McpConfigError('"args" must be a list of strings')
        stdio: dict[str, Any] = {"transport": "stdio", "command": command, "args": args}
        for key in ("env", "cwd"):
            if key in entry:
                stdio[key] = entry[key]
        return cast(Connection, stdio)
    url = entry.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise McpConfigError(f'{transport} needs an http(s) "url"')
    http: dict[str, Any] = {"transport": "streamable_http" if transport == "http" else transport, "url": url}
    if isinstance(entry.get("headers"), dict):
        http["headers"] = entry["headers"]
    return cast(Connection, http)


def read_servers(config_file: Path) -> dict[str, Connection]:
    """The usable servers declared in ``config_file``; an unreadable file or entry is logged
    and contributes none."""
    try:
        document = json.loads(config_file.read_text(encoding="utf-8"))
        servers, skipped = parse_servers(document)
    except (OSError, ValueError) as error:
        _log.error("MCP configuration %s not used: %s", config_file, error)
        return {}
    for name, reason in skipped.items():
        _log.error("MCP server %r skipped: %s", name, reason)
    return servers


@dataclass(frozen=True, slots=True)
class CallTimeout:
    """A tool-call interceptor: the call (its session start included) may take ``seconds``; a
    timeout or any failure of the server or its transport becomes an error result (``isError``),
    which the adapter hands the model as an error tool message."""

    seconds: float

    async def __call__(
        self,
        request: MCPToolCallRequest,
        handler: Callable[[MCPToolCallRequest], Awaitable[MCPToolCallResult]],
    ) -> MCPToolCallResult:
        try:
            async with asyncio.timeout(self.seconds):
                return await handler(request)
        except TimeoutError:
            reason = f"MCP server {request.server_name!r} did not answer within {self.seconds:g} s"
        except Exception as error:  # any transport or server failure: the model reads it instead
            reason = f"MCP server {request.server_name!r} failed: {_describe(error)}"
        _log.warning("MCP tool %r: %s", request.name, reason)
        return CallToolResult(content=[TextContent(type="text", text=f"Error: {reason}")], isError=True)


def _describe(error: BaseException) -> str:
    """The innermost useful message of an error (anyio wraps failures in exception groups)."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


async def load_mcp_tools(config: McpConfig, *, reserved: Sequence[str] = ()) -> list[BaseTool]:
    """The tools of every declared server that lists them within ``config.connect_timeout`` (servers
    are asked concurrently), named ``<server>_<tool>``. A server that fails is logged by name and
    left out; a tool whose name is ``reserved`` (a built-in tool's) is left out too."""
    servers = read_servers(config.config_file)
    if not servers:
        return []
    client = MultiServerMCPClient(
        servers, tool_interceptors=[CallTimeout(config.timeout)], tool_name_prefix=True
    )
    listed = await asyncio.gather(*(_server_tools(client, name, config.connect_timeout) for name in servers))
    tools: list[BaseTool] = []
    taken = set(reserved)
    for name, server_tools in zip(servers, listed, strict=True):
        for tool in server_tools:
            if tool.name in taken:
                _log.error("MCP server %r: tool %r left out, the name is taken", name, tool.name)
                continue
            taken.add(tool.name)
            tools.append(tool)
    return tools


async def _server_tools(client: MultiServerMCPClient, name: str, timeout: float) -> list[BaseTool]:
    try:
        async with asyncio.timeout(timeout):
            tools = await client.get_tools(server_name=name)
    except TimeoutError:
        _log.error("MCP server %r unavailable: no tool list within %g s", name, timeout)
        return []
    except Exception as error:  # a broken server must not fail the start-up
        _log.error("MCP server %r unavailable: %s", name, _describe(error))
        return []
    _log.info("MCP server %r: %d tools (%s)", name, len(tools), ", ".join(t.name for t in tools))
    return tools
