"""A scriptable, OpenAI-compatible chat-completions server on 127.0.0.1 for tests.

Runs uvicorn in a daemon thread (its own event loop), so a test's loop can block,
hang or cancel without stopping the server. Implements ``POST /v1/chat/completions``:

- ``stream: false``: one ``chat.completion`` JSON body with ``usage``;
- ``stream: true``: SSE ``data: {chunk}\\n\\n`` lines, then (with
  ``stream_options.include_usage``) a usage-only chunk, then ``data: [DONE]``.

Each request consumes the next scripted :class:`FakeReply` (then ``default``): a text
reply, a tool call, an error status, a hang before answering, a stall after some
tokens, or slow tokens. Every request is recorded (:class:`RecordedRequest`), with
whether the client went away before the response was complete.

Usage::

    with FakeOpenAIServer() as server:
        server.script(FakeReply(status=429), FakeReply(text="Hi!"))
        ChatOpenAI(base_url=server.base_url, api_key="test", ...)
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from dataclasses import dataclass, field, replace
from typing import Any

from tests.fakes.threaded_server import ScriptedService, read_body, send_json

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

FAKE_MODEL = "fake-gpt-4o-mini-2024-07-18"
_TOKEN = re.compile(r"\s*\S+")
_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error"}


class FakeConnectionDrop(Exception):
    """Raised inside the app to make uvicorn drop a connection mid-response."""


@dataclass(frozen=True, slots=True)
class FakeToolCall:
    name: str
    arguments: dict[str, Any] = field(default_factory=dict)
    call_id: str | None = None  # None: a fresh id per response, as real servers do


@dataclass(frozen=True, slots=True)
class FakeReply:
    """One scripted response.

    - ``status``: answer with this HTTP error status (an OpenAI-style error body);
    - ``hang``: never answer; wait until the client goes away;
    - ``tool_call``: answer with this tool call instead of ``text``;
    - ``stall_after``: stream this many chunks, then wait until the client goes away;
    - ``break_after``: stream this many chunks, then drop the connection (a mid-stream failure);
    - ``token_delay``: seconds slept before each streamed chunk.
    """

    text: str = "Hello from the fake model."
    tool_call: FakeToolCall | None = None
    status: int | None = None
    hang: bool = False
    stall_after: int | None = None
    break_after: int | None = None
    token_delay: float = 0.0
    model: str = FAKE_MODEL


@dataclass(slots=True)
class RecordedRequest:
    """A request the server received; ``disconnected`` means the client left mid-response."""

    body: dict[str, Any]
    received_at: float
    completed: bool = False
    disconnected: bool = False
    disconnected_at: float | None = None

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages", []))


class FakeOpenAIServer(ScriptedService[FakeReply, RecordedRequest]):
    """Start with ``with FakeOpenAIServer() as server:`` (or ``start()``/``stop()``)."""

    def __init__(self, default: FakeReply | None = None) -> None:
        super().__init__(self._app, name="fake OpenAI server", default=default or FakeReply())

    # -- control (called from the test's thread) ------------------------------------

    @property
    def base_url(self) -> str:
        """The ``base_url`` to give an OpenAI client (ends in ``/v1``)."""
        host, port = self._server.address
        return f"http://{host}:{port}/v1"

    def fail_first(self, count: int, status: int) -> None:
        """The next ``count`` requests fail with ``status``."""
        self.script(*[FakeReply(status=status) for _ in range(count)])

    def reset(self) -> None:
        """Forget the script and the recorded requests."""
        with self._lock:
            self._script.clear()
            self._requests.clear()

    async def wait_for_disconnect(self, timeout: float) -> bool:
        """True as soon as any recorded request saw its client leave; False after ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(r.disconnected for r in self.requests):
                return True
            await asyncio.sleep(0.01)
        return any(r.disconnected for r in self.requests)

    # -- the ASGI app (runs on the server's thread) ---------------------------------

    def _next_reply(self, body: dict[str, Any]) -> tuple[FakeReply, RecordedRequest]:
        record = RecordedRequest(body=body, received_at=time.monotonic())
        reply, number = self._take(record)
        if reply.tool_call is not None and reply.tool_call.call_id is None:
            reply = replace(reply, tool_call=replace(reply.tool_call, call_id=f"call_fake_{number}"))
        return reply, record

    async def _app(self, scope: Message, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] != "/v1/chat/completions" or scope["method"] != "POST":
            await send_json(send, 404, {"error": {"message": "not found", "type": "not_found_error"}})
            return
        body = json.loads(await read_body(receive) or b"{}")
        reply, record = self._next_reply(body)
        left = asyncio.Event()
        watcher = asyncio.create_task(_watch_disconnect(receive, left))
        try:
            await self._answer(reply, record, body, send, left)
        except OSError:
            left.set()  # writing to a closed connection
        finally:
            watcher.cancel()
        if left.is_set() and not record.completed:
            record.disconnected, record.disconnected_at = True, time.monotonic()

    async def _answer(
        self, reply: FakeReply, record: RecordedRequest, body: dict[str, Any], send: Send, left: asyncio.Event
    ) -> None:
        if reply.hang:
            await left.wait()
            return
        if not _tool_calls_answered(body.get("messages", [])):
            # Like OpenAI: every assistant tool call needs its tool result.
            await send_json(send, 400, _error_body(400, "tool call without a result"))
        elif reply.status is not None:
            await send_json(send, reply.status, _error_body(reply.status))
        elif body.get("stream"):
            if not await _stream(reply, body, send, left):
                return
        else:
            await send_json(send, 200, _completion(reply, body))
        record.completed = True


async def _watch_disconnect(receive: Receive, left: asyncio.Event) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    left.set()


async def _stream(reply: FakeReply, body: dict[str, Any], send: Send, left: asyncio.Event) -> bool:
    """Send the SSE stream; False when the client left (or was waited out) before the end."""
    headers = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    for index, chunk in enumerate(_chunks(reply, body)):
        if reply.stall_after is not None and index >= reply.stall_after:
            await left.wait()
            return False
        if reply.break_after is not None and index >= reply.break_after:
            # An exception after the response started makes uvicorn drop the connection.
            raise FakeConnectionDrop("fake mid-stream failure")
        if reply.token_delay > 0:
            await asyncio.sleep(reply.token_delay)
        if left.is_set():
            return False
        data = b"data: " + json.dumps(chunk).encode() + b"\n\n"
        await send({"type": "http.response.body", "body": data, "more_body": True})
    await send({"type": "http.response.body", "body": b"data: [DONE]\n\n", "more_body": False})
    return True


def _envelope(reply: FakeReply, **fields: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": reply.model,
        **fields,
    }


def _delta(reply: FakeReply, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
    return _envelope(reply, choices=[{"index": 0, "delta": delta, "finish_reason": finish_reason}])


def _chunks(reply: FakeReply, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The stream's chunks: role, content tokens (or tool-call pieces), finish, usage."""
    if reply.tool_call is not None:
        call = reply.tool_call
        start = {
            "index": 0,
            "id": call.call_id,
            "type": "function",
            "function": {"name": call.name, "arguments": ""},
        }
        yield _delta(reply, {"role": "assistant", "content": None, "tool_calls": [start]})
        for piece in _split(json.dumps(call.arguments), 8):
            yield _delta(reply, {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
        finish = "tool_calls"
    else:
        yield _delta(reply, {"role": "assistant", "content": ""})
        for token in _TOKEN.findall(reply.text):
            yield _delta(reply, {"content": token})
        finish = "stop"
    yield _delta(reply, {}, finish)
    if (body.get("stream_options") or {}).get("include_usage"):
        yield _envelope(reply, choices=[], usage=_usage(reply, body))


def _completion(reply: FakeReply, body: dict[str, Any]) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.text}
    finish = "stop"
    if reply.tool_call is not None:
        call = reply.tool_call
        function = {"name": call.name, "arguments": json.dumps(call.arguments)}
        message = {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": call.call_id, "type": "function", "function": function}],
        }
        finish = "tool_calls"
    choice = {"index": 0, "message": message, "finish_reason": finish}
    return {**_envelope(reply, choices=[choice], usage=_usage(reply, body)), "object": "chat.completion"}


def _usage(reply: FakeReply, body: dict[str, Any]) -> dict[str, int]:
    """Roughly 4 characters per token, like the approximate counter."""
    prompt = sum(len(str(m.get("content") or "")) for m in body.get("messages", [])) // 4 + 1
    completion = len(_TOKEN.findall(reply.text)) if reply.tool_call is None else 10
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _split(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def _error_body(status: int, message: str = "") -> dict[str, Any]:
    kind = _ERROR_TYPES.get(status, "rate_limit_error" if status == 429 else "server_error")
    text = message or f"fake failure {status}"
    return {"error": {"message": text, "type": kind, "param": None, "code": None}}


def _tool_calls_answered(messages: list[dict[str, Any]]) -> bool:
    """True when each assistant tool call is followed by a tool message with its id."""
    for index, message in enumerate(messages):
        wanted = {call.get("id") for call in message.get("tool_calls") or []}
        following = messages[index + 1 : index + 1 + len(wanted)]
        if wanted != {m.get("tool_call_id") for m in following if m.get("role") == "tool"}:
            return False
    return True
