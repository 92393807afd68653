"""A fake of Anthropic's Messages API (``POST /v1/messages``) on 127.0.0.1, for the provider path
that is not OpenAI's (``LLM_MODEL=anthropic:...``, LangChain's ``ChatAnthropic``).

It answers each request with the next scripted :class:`AnthropicReply` (else the default), as the
real API does: a streamed reply as the documented event sequence (``message_start``,
``content_block_start``, ``content_block_delta`` per piece, ``content_block_stop``,
``message_delta`` with the usage, ``message_stop``), a whole one as one ``message`` object, a
failure as an ``error`` object with its status. It records each request's body and API key
(sent as ``x-api-key``, or as a Bearer token, which anthropic 2.x does).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from starlette.types import Receive, Scope, Send

from tests.fakes.threaded_server import ScriptedService, in_pieces, read_body, send_json

FAKE_CLAUDE = "claude-fake-2026-01-01"


@dataclass(frozen=True, slots=True)
class AnthropicReply:
    """``text`` in ``pieces`` streamed deltas; or, with ``status``, an API error."""

    text: str = "Hello from the fake Claude."
    pieces: int = 3
    status: int | None = None


@dataclass(slots=True)
class AnthropicRequest:
    body: dict[str, Any]
    api_key: str | None
    path: str = ""
    headers: dict[str, str] = field(default_factory=dict)


class FakeAnthropicServer(ScriptedService[AnthropicReply, AnthropicRequest]):
    """``with FakeAnthropicServer() as server:``; ``base_url`` for ``LLM_BASE_URL``."""

    def __init__(self, default: AnthropicReply | None = None) -> None:
        super().__init__(self._app, name="fake Anthropic server", default=default or AnthropicReply())

    @property
    def base_url(self) -> str:
        return self.root_url

    async def _app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = json.loads(await read_body(receive) or b"{}")
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        reply, _ = self._take(AnthropicRequest(body, _api_key(headers), scope["path"], headers))
        if scope["path"] != "/v1/messages":
            await send_json(send, 404, _error("not_found_error", "no such route"))
        elif reply.status is not None:
            await send_json(send, reply.status, _error("api_error", "scripted failure"))
        elif body.get("stream"):
            await _stream(send, reply, body)
        else:
            await send_json(send, 200, _message(reply, body, text=reply.text))


def _api_key(headers: dict[str, str]) -> str | None:
    """The key as the API takes it: ``x-api-key``, or (the SDK's newer way) a Bearer token."""
    bearer = headers.get("authorization", "")
    return headers.get("x-api-key") or (
        bearer.removeprefix("Bearer ") if bearer.startswith("Bearer ") else None
    )


def _error(kind: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}}


def _usage(reply: AnthropicReply, body: dict[str, Any]) -> dict[str, int]:
    prompt = sum(len(str(m.get("content", "")).split()) for m in body.get("messages", []))
    return {"input_tokens": max(prompt, 1), "output_tokens": max(len(reply.text.split()), 1)}


def _message(reply: AnthropicReply, body: dict[str, Any], *, text: str | None) -> dict[str, Any]:
    content = [] if text is None else [{"type": "text", "text": text}]
    return {
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "model": FAKE_CLAUDE,
        "content": content,
        "stop_reason": None if text is None else "end_turn",
        "stop_sequence": None,
        "usage": _usage(reply, body),
    }


async def _stream(send: Send, reply: AnthropicReply, body: dict[str, Any]) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")],
        }
    )
    pieces = in_pieces(reply.text, reply.pieces)
    usage = _usage(reply, body)
    events: list[tuple[str, dict[str, Any]]] = [
        ("message_start", {"type": "message_start", "message": _message(reply, body, text=None)}),
        (
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        ),
        *[
            (
                "content_block_delta",
                {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}},
            )
            for piece in pieces
        ],
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": usage["output_tokens"]},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
    for name, data in events:
        chunk = f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})
