"""MCP tools through the agent: a FastMCP server (tests/fakes/mcp_server.py) over stdio (a
subprocess) and streamable HTTP (127.0.0.1), the real ChatOpenAI client against the fake
OpenAI server scripted to call them. Checkpoints in memory: no database needed."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from tests.agent_runs import collect
from tests.fakes.mcp_server import FakeMcpHttpServer, stdio_entry
from tests.fakes.openai_server import FakeOpenAIServer, FakeReply, FakeToolCall

from parley.adapters.outbound.langgraph import AgentLimits, LangGraphChatAgent, ModelConfig
from parley.adapters.outbound.langgraph.mcp_tools import McpConfig, load_mcp_tools, parse_servers
from parley.config import load_settings
from parley.container import Container
from parley.ports.agent import AgentEvent, AgentTurn, TokenDelta, ToolCall

pytestmark = pytest.mark.integration

# Generous: a stdio server is a Python process importing the mcp SDK, on a busy machine.
SLOW_OK = 60.0


@pytest.fixture(scope="module")
def fake_openai() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as server:
        yield server


@pytest.fixture(autouse=True)
def _fresh_model(fake_openai: FakeOpenAIServer) -> None:
    fake_openai.reset()


@pytest.fixture(scope="module")
def mcp_http() -> Iterator[FakeMcpHttpServer]:
    with FakeMcpHttpServer() as server:
        yield server


def write_config(directory: Path, servers: dict[str, Any]) -> Path:
    path = directory / f"mcp-{uuid4().hex}.json"
    path.write_text(json.dumps({"servers": servers}), encoding="utf-8")
    return path


def make_agent(server: FakeOpenAIServer, mcp: McpConfig) -> LangGraphChatAgent:
    model = ModelConfig(name="gpt-4o-mini", api_key="test-key", base_url=server.base_url, request_timeout=10)
    return LangGraphChatAgent(
        checkpoint_store="memory",
        model=model,
        limits=AgentLimits(backoff_base=0.01, turn_timeout=SLOW_OK),
        mcp=mcp,
    )


@pytest.fixture(scope="module")
async def agent(
    tmp_path_factory: pytest.TempPathFactory, fake_openai: FakeOpenAIServer, mcp_http: FakeMcpHttpServer
) -> AsyncIterator[LangGraphChatAgent]:
    """Both transports, next to two broken servers (a command that does not exist, a dead URL)
    and an entry with no command: start-up succeeds with the tools of the servers that work."""
    config = write_config(
        tmp_path_factory.mktemp("mcp"),
        {
            "local": stdio_entry(),
            "remote": {"transport": "streamable_http", "url": mcp_http.url},
            "missing": {"transport": "stdio", "command": "/nonexistent/mcp-server"},
            "dead": {"transport": "streamable_http", "url": "http://127.0.0.1:9/mcp"},
            "nocommand": {"transport": "stdio"},
        },
    )
    async with make_agent(fake_openai, McpConfig(config_file=config, timeout=SLOW_OK)) as started:
        yield started


def turn(content: str) -> AgentTurn:
    return AgentTurn(conversation_id=uuid4(), user_id=uuid4(), content=content)


def text_of(events: list[AgentEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TokenDelta))


def offered_tools(server: FakeOpenAIServer) -> set[str]:
    return {tool["function"]["name"] for tool in server.requests[0].body.get("tools", [])}


@pytest.mark.parametrize("server", ["local", "remote"])
async def test_an_mcp_tool_is_offered_called_and_its_result_reaches_the_model(
    agent: LangGraphChatAgent, fake_openai: FakeOpenAIServer, server: str
) -> None:
    fake_openai.script(
        FakeReply(tool_call=FakeToolCall(f"{server}_shout", {"text": "hello"}, call_id="call_1")),
        FakeReply(text="The server says HELLO!"),
    )

    events = await collect(agent, turn("shout hello"))

    assert ToolCall(f"{server}_shout", {"text": "hello"}, "HELLO!") in events
    assert text_of(events) == "The server says HELLO!"
    tool_message = fake_openai.requests[-1].messages[-1]
    assert (tool_message["role"], tool_message["tool_call_id"]) == ("tool", "call_1")
    assert "HELLO!" in json.dumps(tool_message["content"])


async def test_broken_servers_leave_start_up_and_the_other_tools_working(
    agent: LangGraphChatAgent, fake_openai: FakeOpenAIServer
) -> None:
    fake_openai.script(
        FakeReply(tool_call=FakeToolCall("calculator", {"expression": "6*7"})), FakeReply(text="42.")
    )

    events = await collect(agent, turn("6*7?"))

    assert ToolCall("calculator", {"expression": "6*7"}, "42") in events
    assert offered_tools(fake_openai) == {
        "calculator",
        "current_time",
        *(f"{server}_{tool}" for server in ("local", "remote") for tool in ("shout", "hang", "die")),
    }


async def test_a_call_that_hangs_past_the_timeout_returns_an_error_the_model_reads(
    tmp_path: Path, fake_openai: FakeOpenAIServer, mcp_http: FakeMcpHttpServer
) -> None:
    config = write_config(tmp_path, {"remote": {"url": mcp_http.url}})
    hang = FakeReply(tool_call=FakeToolCall("remote_hang", {}, call_id="call_h"))
    fake_openai.script(hang, FakeReply(text="It timed out."))
    async with make_agent(fake_openai, McpConfig(config_file=config, timeout=1.0)) as agent:
        events = await collect(agent, turn("hang"))

    [call] = [e for e in events if isinstance(e, ToolCall)]
    assert call.name == "remote_hang"
    assert "did not answer within 1 s" in call.result
    assert text_of(events) == "It timed out."
    assert "did not answer" in json.dumps(fake_openai.requests[-1].messages[-1]["content"])


async def test_a_server_that_died_returns_errors_then_is_reached_again_once_it_is_back(
    tmp_path: Path, fake_openai: FakeOpenAIServer, caplog: pytest.LogCaptureFixture
) -> None:
    server = FakeMcpHttpServer()
    server.start()
    port = server.port
    config = write_config(tmp_path, {"remote": {"url": server.url}})
    shout = FakeReply(tool_call=FakeToolCall("remote_shout", {"text": "again"}))
    async with make_agent(fake_openai, McpConfig(config_file=config, timeout=SLOW_OK)) as agent:
        server.stop()
        fake_openai.script(shout, FakeReply(text="down"))
        with caplog.at_level(logging.WARNING, "parley.adapters.outbound.langgraph.mcp_tools"):
            down = await collect(agent, turn("shout again"))
        with FakeMcpHttpServer(port=port):
            fake_openai.script(shout, FakeReply(text="up"))
            up = await collect(agent, turn("shout again"))

    [failed] = [e for e in down if isinstance(e, ToolCall)]
    assert "MCP server 'remote' failed" in failed.result
    assert text_of(down) == "down"
    assert any("MCP server 'remote' failed" in record.getMessage() for record in caplog.records)
    assert ToolCall("remote_shout", {"text": "again"}, "AGAIN!") in up


async def test_a_stdio_server_that_dies_mid_call_is_an_error_result_and_the_next_call_starts_it_again(
    agent: LangGraphChatAgent, fake_openai: FakeOpenAIServer
) -> None:
    fake_openai.script(
        FakeReply(tool_call=FakeToolCall("local_die")),
        FakeReply(tool_call=FakeToolCall("local_shout", {"text": "still here"})),
        FakeReply(text="Recovered."),
    )

    events = await collect(agent, turn("die, then shout"))

    died, shouted = [e for e in events if isinstance(e, ToolCall)]
    assert died.name == "local_die"
    assert "MCP server 'local' failed" in died.result
    assert shouted == ToolCall("local_shout", {"text": "still here"}, "STILL HERE!")
    assert text_of(events) == "Recovered."


async def test_the_settings_give_the_apps_agent_the_servers_tools(
    tmp_path: Path, mcp_http: FakeMcpHttpServer
) -> None:
    config = write_config(
        tmp_path, {"remote": {"url": mcp_http.url}, "dead": {"url": "http://127.0.0.1:9/mcp"}}
    )
    settings = load_settings(llm={"mcp_config_file": str(config), "mcp_connect_timeout_seconds": SLOW_OK})

    async with Container(settings=settings).evaluation_agent() as agent:  # the app's agent, memory only
        assert agent.tool_names == ("calculator", "current_time", "remote_shout", "remote_hang", "remote_die")


async def test_a_server_that_never_answers_is_left_out_after_the_connect_timeout(
    tmp_path: Path, mcp_http: FakeMcpHttpServer, caplog: pytest.LogCaptureFixture
) -> None:
    silent = {"command": sys.executable, "args": ["-c", "import time; time.sleep(3600)"]}
    config = write_config(tmp_path, {"silent": silent, "remote": {"url": mcp_http.url}})

    with caplog.at_level(logging.ERROR, "parley.adapters.outbound.langgraph.mcp_tools"):
        tools = await load_mcp_tools(McpConfig(config_file=config, connect_timeout=1.0))

    assert sorted(tool.name for tool in tools) == ["remote_die", "remote_hang", "remote_shout"]
    assert any("'silent' unavailable: no tool list within 1 s" in r.getMessage() for r in caplog.records)


async def test_an_unreadable_configuration_gives_no_tools_and_says_why(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    missing = McpConfig(config_file=tmp_path / "absent.json")
    garbled = tmp_path / "garbled.json"
    garbled.write_text("{not json", encoding="utf-8")

    with caplog.at_level(logging.ERROR, "parley.adapters.outbound.langgraph.mcp_tools"):
        assert await load_mcp_tools(missing) == []
        assert await load_mcp_tools(McpConfig(config_file=garbled)) == []

    messages = [record.getMessage() for record in caplog.records]
    assert any("absent.json" in message for message in messages)
    assert any("garbled.json" in message for message in messages)


def test_entries_are_checked_one_by_one() -> None:
    usable, skipped = parse_servers(
        {
            "mcpServers": {
                "a": {"command": "python", "args": ["-m", "server"]},
                "b": {"url": "http://127.0.0.1:1/mcp"},
                "c": {"transport": "websocket-ish"},
                "d": {"command": "python", "args": "-m server"},
                "e": {"transport": "streamable_http", "url": "ftp://x"},
                "bad name": {"command": "python"},
            }
        }
    )

    assert usable == {
        "a": {"transport": "stdio", "command": "python", "args": ["-m", "server"]},
        "b": {"transport": "streamable_http", "url": "http://127.0.0.1:1/mcp"},
    }
    assert set(skipped) == {"c", "d", "e", "bad name"}
    assert "unknown transport" in skipped["c"]
