"""An MCP tool round trip through the API: the app started with MCP_CONFIG_FILE naming a FastMCP
server over stdio (tests/fakes/mcp_server.py), the model a fake OpenAI server scripted to call
its tool; a dead server next to it changes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.conftest import AppFactory, signed_up
from tests.e2e.sse_client import parse_events
from tests.e2e.test_auth_api import new_email
from tests.e2e.test_chat_api import CHAT, new_session
from tests.fakes.mcp_server import stdio_entry
from tests.fakes.openai_server import FakeOpenAIServer, FakeReply, FakeToolCall

pytestmark = pytest.mark.e2e


async def test_a_streamed_turn_calls_an_mcp_tool_and_the_reply_carries_its_result(
    start_app: AppFactory, tmp_path: Path
) -> None:
    config = tmp_path / "mcp.json"
    servers = {
        "local": stdio_entry(),
        "dead": {"transport": "streamable_http", "url": "http://127.0.0.1:9/mcp"},
    }
    config.write_text(json.dumps({"servers": servers}), encoding="utf-8")
    with FakeOpenAIServer() as model:
        model.script(
            FakeReply(tool_call=FakeToolCall("local_shout", {"text": "parley"})),
            FakeReply(text="The server answered PARLEY!"),
        )
        _, client = await start_app(
            llm={
                "api_key": "test-key",
                "base_url": model.base_url,
                "model": "fake",
                "mcp_config_file": config,
            }
        )
        headers = await signed_up(client, new_email())
        session_id = (await new_session(client, headers))["id"]

        response = await client.post(
            f"{CHAT}/{session_id}/messages/stream", headers=headers, json={"content": "shout parley"}
        )
        tool_result = model.requests[-1].messages[-1]

    events = parse_events(response.text)
    assert ("tool", {"name": "local_shout", "arguments": {"text": "parley"}, "result": "PARLEY!"}) in events
    assert events[-1][0] == "done"
    assert events[-1][1]["message"]["content"] == "The server answered PARLEY!"
    assert tool_result["role"] == "tool"
    assert "PARLEY!" in json.dumps(tool_result["content"])
