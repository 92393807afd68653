"""Human approval of tool calls (TOOLS_REQUIRING_APPROVAL) through the whole stack, on PostgreSQL.

The offline model calls the calculator for arithmetic; here the calculator needs approval, so a
sum pauses the turn: the stream ends with an ``approval`` event, the session refuses new messages
with 409, and POST .../approval[/stream] approves, rejects or edits the call and resumes the graph.
The model-driven path (the model is told of a rejection) runs against the fake OpenAI server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from parley.main import create_app
from tests.e2e.conftest import AppFactory, make_settings, signed_up
from tests.e2e.sse_client import parse_events
from tests.e2e.test_chat_api import CHAT, new_session
from tests.fakes.openai_server import FakeOpenAIServer, FakeReply, FakeToolCall

pytestmark = pytest.mark.e2e

APPROVE_CALCULATOR = {"approval_tools": "calculator"}
PENDING = "A tool call in this session is awaiting approval"


async def _user(client: httpx.AsyncClient) -> tuple[dict[str, str], str]:
    """A signed-up user's header and a new session of theirs."""
    headers = await signed_up(client, f"approver-{uuid.uuid4().hex[:10]}@example.com")
    return headers, (await new_session(client, headers))["id"]


async def _paused(client: httpx.AsyncClient, headers: dict[str, str], session_id: str) -> dict[str, Any]:
    """Ask for a sum over the stream; the turn pauses: returns the ``approval`` event's data."""
    response = await client.post(
        f"{CHAT}/{session_id}/messages/stream", headers=headers, json={"content": "What is 17 * 23?"}
    )
    events = parse_events(response.text)
    assert [name for name, _ in events] == ["message", "approval"], response.text
    return events[-1][1]


def _fake_model(server: FakeOpenAIServer, **more: object) -> dict[str, object]:
    """The ``llm`` settings of a model on the fake OpenAI server; the calculator needs approval."""
    return {
        "api_key": "test-key",
        "base_url": server.base_url,
        "model": "fake-model",
        **APPROVE_CALCULATOR,
        **more,
    }


async def _decide_streamed(
    client: httpx.AsyncClient, headers: dict[str, str], session_id: str, decision: dict[str, Any]
) -> httpx.Response:
    """POST the decision to the streaming route: the rest of the turn, as SSE."""
    return await client.post(f"{CHAT}/{session_id}/approval/stream", headers=headers, json=decision)


async def _history(
    client: httpx.AsyncClient, headers: dict[str, str], session_id: str
) -> list[dict[str, Any]]:
    response = await client.get(f"{CHAT}/{session_id}/messages", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["items"]  # type: ignore[no-any-return]


async def test_a_tool_needing_approval_pauses_the_turn_until_approved_then_streams_the_rest(
    start_app: AppFactory,
) -> None:
    _, client = await start_app(llm=APPROVE_CALCULATOR)
    headers, session_id = await _user(client)

    paused = await _paused(client, headers, session_id)

    approval = paused["approval"]
    assert (approval["tool"], approval["arguments"]) == ("calculator", {"expression": "17 * 23"})
    assert set(paused["usage"]) == {"prompt_tokens", "completion_tokens"}
    busy = await client.post(f"{CHAT}/{session_id}/messages", headers=headers, json={"content": "hello?"})
    assert (busy.status_code, busy.json()) == (409, {"detail": PENDING})
    pending = await client.get(f"{CHAT}/{session_id}/approval", headers=headers)
    assert (pending.status_code, pending.json()) == (200, approval)
    assert [m["role"] for m in await _history(client, headers, session_id)] == ["user"]  # no reply yet

    resumed = await _decide_streamed(
        client, headers, session_id, {"id": approval["id"], "decision": "approve"}
    )

    events = parse_events(resumed.text)
    names = [name for name, _ in events]
    assert (names[0], names[-1], "message" in names) == ("tool", "done", False), resumed.text
    assert events[0][1] == {"name": "calculator", "arguments": {"expression": "17 * 23"}, "result": "391"}
    reply = events[-1][1]["message"]
    assert reply["status"] == "complete"
    assert "391" in reply["content"]
    assert reply["content"] == "".join(data["delta"] for name, data in events if name == "token")
    assert [m["content"] for m in await _history(client, headers, session_id)] == [
        "What is 17 * 23?",
        reply["content"],
    ]
    assert (await client.get(f"{CHAT}/{session_id}/approval", headers=headers)).status_code == 404
    again = await client.post(
        f"{CHAT}/{session_id}/approval", headers=headers, json={"id": approval["id"], "decision": "approve"}
    )
    assert (again.status_code, again.json()) == (404, {"detail": "Approval not found"})
    after = await client.post(f"{CHAT}/{session_id}/messages", headers=headers, json={"content": "thanks"})
    assert after.status_code == 200, after.text


async def test_without_a_stream_the_message_is_202_and_the_decision_returns_the_reply(
    start_app: AppFactory,
) -> None:
    _, client = await start_app(llm=APPROVE_CALCULATOR)
    headers, session_id = await _user(client)

    sent = await client.post(
        f"{CHAT}/{session_id}/messages", headers=headers, json={"content": "What is 6 * 7?"}
    )

    assert sent.status_code == 202, sent.text
    assert set(sent.json()) == {"message", "approval"}
    assert sent.json()["message"]["content"] == "What is 6 * 7?"
    approval = sent.json()["approval"]
    decided = await client.post(
        f"{CHAT}/{session_id}/approval",
        headers=headers,
        json={"id": approval["id"], "decision": "edit", "arguments": {"expression": "2 + 2"}},
    )
    assert decided.status_code == 200, decided.text
    assert decided.json()["approval"] is None
    reply = decided.json()["reply"]
    assert reply["status"] == "complete"
    assert reply["content"].endswith("says: 4")  # the edited arguments ran, not 6 * 7


async def test_an_approved_call_of_a_real_model_runs_and_its_result_is_sent_back_to_the_model(
    start_app: AppFactory,
) -> None:
    with FakeOpenAIServer() as server:
        server.script(
            FakeReply(tool_call=FakeToolCall("calculator", {"expression": "12 * 12"})),
            FakeReply(text="It is 144."),
        )
        _, client = await start_app(llm=_fake_model(server))
        headers, session_id = await _user(client)
        paused = await _paused(client, headers, session_id)
        assert len(server.requests) == 1  # paused before the tool ran, with no second model call

        resumed = await _decide_streamed(
            client, headers, session_id, {"id": paused["approval"]["id"], "decision": "approve"}
        )

    events = parse_events(resumed.text)
    assert events[0][0] == "tool", resumed.text
    assert events[0][1]["result"] == "144"
    assert events[-1][0] == "done"
    assert events[-1][1]["message"]["content"] == "It is 144."
    assert events[-1][1]["model"] is not None
    told = [m for m in server.requests[1].messages if m["role"] == "tool"]
    assert [m["content"] for m in told] == ["144"]


async def test_a_rejection_is_told_to_the_model_with_the_reason_and_the_tool_never_runs(
    start_app: AppFactory,
) -> None:
    with FakeOpenAIServer() as server:
        server.script(
            FakeReply(tool_call=FakeToolCall("calculator", {"expression": "2 ** 99999"})),
            FakeReply(text="Understood, no calculation."),
        )
        _, client = await start_app(llm=_fake_model(server))
        headers, session_id = await _user(client)
        paused = await _paused(client, headers, session_id)

        resumed = await _decide_streamed(
            client,
            headers,
            session_id,
            {"id": paused["approval"]["id"], "decision": "reject", "reason": "too expensive"},
        )

    events = parse_events(resumed.text)
    assert events[-1][0] == "done", resumed.text
    assert events[-1][1]["message"]["content"] == "Understood, no calculation."
    tool = next(data for name, data in events if name == "tool")
    assert "rejected" in tool["result"]
    assert "too expensive" in tool["result"]
    assert len(server.requests) == 2
    told = [m for m in server.requests[1].messages if m["role"] == "tool"]
    assert len(told) == 1, server.requests[1].messages
    assert "too expensive" in told[0]["content"]


@contextlib.asynccontextmanager
async def _running_app(database_url: str, folder: Path) -> AsyncIterator[httpx.AsyncClient]:
    """An app through its whole life: started, then shut down (pools closed) on leaving."""
    app = create_app(make_settings(database_url, folder, llm=APPROVE_CALCULATOR))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


async def test_a_paused_turn_survives_a_restart_and_is_resumed_by_the_next_process(
    e2e_database_url: str, tmp_path: Path
) -> None:
    """Everything about the pause lives in PostgreSQL (the slot and the graph's checkpoint): the
    app that paused shuts down, a new one on the same database resumes it."""
    async with _running_app(e2e_database_url, tmp_path) as before:
        headers, session_id = await _user(before)
        paused = await _paused(before, headers, session_id)

    async with _running_app(e2e_database_url, tmp_path) as after:
        pending = await after.get(f"{CHAT}/{session_id}/approval", headers=headers)
        resumed = await _decide_streamed(
            after, headers, session_id, {"id": paused["approval"]["id"], "decision": "approve"}
        )

    assert pending.json() == paused["approval"]
    events = parse_events(resumed.text)
    assert events[-1][0] == "done", resumed.text
    assert "391" in events[-1][1]["message"]["content"]


async def test_an_expired_approval_is_410_and_the_session_takes_messages_again(start_app: AppFactory) -> None:
    _, client = await start_app(llm=APPROVE_CALCULATOR, approval_timeout_seconds=0.5)
    headers, session_id = await _user(client)
    approval = (await _paused(client, headers, session_id))["approval"]
    expires_at = datetime.fromisoformat(approval["expires_at"])

    # Waiting past the deadline only makes it more expired: no race with a busy machine.
    await asyncio.sleep((expires_at - datetime.now(UTC)).total_seconds() + 0.1)
    assert datetime.now(UTC) > expires_at
    late = await client.post(
        f"{CHAT}/{session_id}/approval", headers=headers, json={"id": approval["id"], "decision": "approve"}
    )
    assert (late.status_code, late.json()) == (410, {"detail": "The approval has expired"})
    assert (await client.get(f"{CHAT}/{session_id}/approval", headers=headers)).status_code == 404

    after = await client.post(
        f"{CHAT}/{session_id}/messages", headers=headers, json={"content": "never mind"}
    )

    assert after.status_code == 200, after.text
    assert "never mind" in after.json()["reply"]["content"]
    dropped = await client.post(
        f"{CHAT}/{session_id}/approval", headers=headers, json={"id": approval["id"], "decision": "approve"}
    )
    assert dropped.status_code == 404  # taken over: the call will never run
    assert [m["content"] for m in await _history(client, headers, session_id)][:2] == [
        "What is 17 * 23?",
        "never mind",
    ]


async def test_clearing_or_deleting_a_paused_session_drops_the_approval(start_app: AppFactory) -> None:
    _, client = await start_app(llm=APPROVE_CALCULATOR)
    headers, session_id = await _user(client)
    approval = (await _paused(client, headers, session_id))["approval"]

    cleared = await client.delete(f"{CHAT}/{session_id}/messages", headers=headers)

    assert cleared.status_code == 204
    assert (await client.get(f"{CHAT}/{session_id}/approval", headers=headers)).status_code == 404
    decided = await client.post(
        f"{CHAT}/{session_id}/approval", headers=headers, json={"id": approval["id"], "decision": "approve"}
    )
    assert decided.status_code == 404
    fresh = await client.post(f"{CHAT}/{session_id}/messages", headers=headers, json={"content": "hello"})
    assert fresh.status_code == 200, fresh.text
    assert "remember 0 earlier" in fresh.json()["reply"]["content"]  # the agent forgot the old history

    approval = (await _paused(client, headers, session_id))["approval"]
    assert (await client.delete(f"{CHAT}/{session_id}", headers=headers)).status_code == 204
    gone = await client.post(
        f"{CHAT}/{session_id}/approval", headers=headers, json={"id": approval["id"], "decision": "approve"}
    )
    assert (gone.status_code, gone.json()) == (404, {"detail": "Session not found"})


async def test_bad_decisions_are_refused_and_leave_the_approval_pending(start_app: AppFactory) -> None:
    _, client = await start_app(llm=APPROVE_CALCULATOR)
    headers, session_id = await _user(client)
    stranger, _ = await _user(client)
    approval = (await _paused(client, headers, session_id))["approval"]
    url = f"{CHAT}/{session_id}/approval"

    cases: list[tuple[dict[str, str], dict[str, Any], int, str | None]] = [
        (headers, {"id": approval["id"], "decision": "edit"}, 422, "arguments"),
        (
            headers,
            {"id": approval["id"], "decision": "edit", "arguments": {"expression": "1\u0000"}},
            422,
            "arguments",
        ),
        (headers, {"id": approval["id"], "decision": "edit", "arguments": {"k\ud800": 1}}, 422, "arguments"),
        (headers, {"id": approval["id"], "decision": "reject", "reason": "x" * 2001}, 422, "reason"),
        (headers, {"id": approval["id"], "decision": "maybe"}, 422, "decision"),
        (headers, {"id": "not-a-uuid", "decision": "approve"}, 422, "id"),
        (headers, {"id": str(uuid.uuid4()), "decision": "approve"}, 404, None),
        (stranger, {"id": approval["id"], "decision": "approve"}, 404, None),
    ]
    for who, body, status, field in cases:
        response = await client.post(
            url, headers={**who, "Content-Type": "application/json"}, content=_json(body)
        )
        assert response.status_code == status, (body, response.text)
        if field is not None:
            assert field in [e["field"] for e in response.json()["errors"]], response.text
    assert (await client.get(url, headers=stranger)).status_code == 404

    assert (await client.get(url, headers=headers)).json() == approval  # still pending, untouched


async def test_concurrent_decisions_resume_the_turn_once(start_app: AppFactory) -> None:
    _, client = await start_app(llm=APPROVE_CALCULATOR)
    headers, session_id = await _user(client)
    approval = (await _paused(client, headers, session_id))["approval"]
    body = {"id": approval["id"], "decision": "approve"}

    responses = await asyncio.gather(
        *(client.post(f"{CHAT}/{session_id}/approval", headers=headers, json=body) for _ in range(3))
    )

    statuses = sorted(r.status_code for r in responses)
    assert statuses[0] == 200, [r.text for r in responses]
    assert set(statuses[1:]) <= {404, 409}, [r.text for r in responses]
    replies = [m for m in await _history(client, headers, session_id) if m["role"] == "assistant"]
    assert len(replies) == 1


def _json(body: dict[str, Any]) -> bytes:
    """The body as JSON, lone surrogates escaped (httpx's json= would refuse to encode them)."""
    return json.dumps(body).encode()


async def test_a_nul_in_the_models_arguments_is_replaced_not_a_failure(start_app: AppFactory) -> None:
    with FakeOpenAIServer() as server:
        server.script(
            FakeReply(tool_call=FakeToolCall("calculator", {"expression": "1 + 1\u0000", "k\ud800": 1})),
            FakeReply(text="Done."),
        )
        _, client = await start_app(llm=_fake_model(server))
        headers, session_id = await _user(client)

        paused = await _paused(client, headers, session_id)

        assert paused["approval"]["arguments"] == {"expression": "1 + 1\ufffd", "k\ufffd": 1}
        pending = await client.get(f"{CHAT}/{session_id}/approval", headers=headers)
        assert pending.json() == paused["approval"]


async def test_without_approval_too_a_lone_surrogate_in_a_tool_call_no_longer_fails_the_turn(
    start_app: AppFactory,
) -> None:
    """The checkpoint could not serialise the model's message (msgpack refuses lone surrogates):
    the turn ended with 502. The arguments are now cleaned as the reply's text is."""
    with FakeOpenAIServer() as server:
        server.script(
            FakeReply(tool_call=FakeToolCall("calculator", {"expression": "2 + 2", "note\ud800": "x\ud800"})),
            FakeReply(text="Four."),
        )
        _, client = await start_app(llm=_fake_model(server, approval_tools=""))
        headers, session_id = await _user(client)

        response = await client.post(
            f"{CHAT}/{session_id}/messages/stream", headers=headers, json={"content": "2 + 2?"}
        )

    events = parse_events(response.text)
    assert [name for name, _ in events] == ["message", "tool", "token", "done"], response.text
    assert events[1][1]["arguments"] == {"expression": "2 + 2", "note\ufffd": "x\ufffd"}
    assert events[-1][1]["message"]["content"] == "Four."
