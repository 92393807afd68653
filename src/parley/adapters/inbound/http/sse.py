"""Server-Sent Events framing of a chat turn (API.md, "stream").

``message`` (the stored user message; not for a turn resumed by an approval decision), ``token`` deltas,
``tool`` calls, then exactly one ``done``, ``error`` or ``approval`` (the turn paused on a tool call needing
the user's approval; the stream ends there). ``done`` also carries ``session`` (the session as renamed) when
the turn's first exchange named it (its title was ready, and stored with the reply). A ``: ping`` comment
goes out after 15 s of silence. When the client goes away, the turn's generator is closed, which cancels the
agent and stores the partial reply as ``incomplete``.

When the server is told to stop (SIGTERM), streams in flight are drained: they go on
for up to ``drain_seconds`` and end with their normal ``done``; one still running then
is stopped, its reply stored as ``incomplete``, and it ends with an ``error`` event
(``The server is shutting down``). sse-starlette notices the shutdown (it watches
uvicorn) and, left to itself, would cut every stream at once.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

import anyio
from loguru import logger
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.background import BackgroundTask
from starlette.types import Message as AsgiMessage
from starlette.types import Send

from parley.adapters.inbound.http.edge import StreamTiming
from parley.adapters.inbound.http.errors import ServerShuttingDown, error_body
from parley.adapters.inbound.http.schemas import ApprovalOut, MessageOut, SessionOut
from parley.application.chat.turns import ApprovalAwaited, ReplyFailed, ReplyStored, Turn
from parley.domain.chat import Message
from parley.ports.agent import TokenDelta, ToolCall

# After the drain time, stopping a turn (agent cancelled, reply stored, error event sent)
# takes a moment: sse-starlette cuts the stream only this much later.
STOP_MARGIN_SECONDS = 3.0


def _message(message: Message) -> dict[str, Any]:
    return MessageOut.of(message).model_dump(mode="json")


def _approval(event: ApprovalAwaited) -> dict[str, Any]:
    usage = {"prompt_tokens": event.prompt_tokens, "completion_tokens": event.completion_tokens}
    return {"approval": ApprovalOut.of(event.approval).model_dump(mode="json"), "usage": usage}


def _event(name: str, data: dict[str, Any]) -> ServerSentEvent:
    return ServerSentEvent(event=name, data=json.dumps(data, ensure_ascii=False, separators=(",", ":")))


def _error_event(error: Exception) -> ServerSentEvent:
    """The ``error`` event for ``error``, as the error table answers it; a bug is logged once."""
    status, body, _ = error_body(error)
    if status == 500:
        logger.opt(exception=error).error("Unhandled error while streaming a reply")
    return _event("error", body)


async def _stop_when_drained(turn: Turn, shutdown: anyio.Event, drain_seconds: float) -> None:
    """Once the server is stopping, give the turn ``drain_seconds`` to end by itself."""
    await shutdown.wait()
    await asyncio.sleep(drain_seconds)
    await turn.interrupt(ServerShuttingDown())


async def _frames(turn: Turn, shutdown: anyio.Event, drain_seconds: float) -> AsyncIterator[ServerSentEvent]:
    if turn.user_message is not None:
        yield _event("message", {"message": _message(turn.user_message)})
    drain = asyncio.ensure_future(_stop_when_drained(turn, shutdown, drain_seconds))
    try:
        async with aclosing(turn.events()) as events:
            async for event in events:
                if isinstance(event, TokenDelta):
                    yield _event("token", {"delta": event.text})
                elif isinstance(event, ToolCall):
                    yield _event(
                        "tool", {"name": event.name, "arguments": event.arguments, "result": event.result}
                    )
                elif isinstance(event, ReplyStored):
                    usage = {
                        "prompt_tokens": event.prompt_tokens,
                        "completion_tokens": event.completion_tokens,
                    }
                    done: dict[str, Any] = {
                        "message": _message(event.message),
                        "usage": usage,
                        "model": event.model,
                    }
                    if event.renamed is not None:
                        done["session"] = SessionOut.of(event.renamed).model_dump(mode="json")
                    yield _event("done", done)
                elif isinstance(event, ReplyFailed):
                    yield _error_event(event.error)
                elif isinstance(event, ApprovalAwaited):
                    yield _event("approval", _approval(event))
    except Exception as exc:  # a bug below: the turn stored what it could
        yield _error_event(exc)
    finally:
        drain.cancel()
        # The client may have left (anyio then cancels this generator, and every await in
        # it): aclose() still returns only once the partial reply is stored.
        await turn.aclose()


class EventStream(EventSourceResponse):
    """sse-starlette's response, minus a per-event cost when no send timeout is set.

    sse-starlette wraps every send in ``anyio.move_on_after(send_timeout)``, even for
    ``None``: a cancel scope per event, plus anyio asking sniffio which event loop runs.
    That was ~4 % of the server's CPU with 1,000 concurrent streams (py-spy), for no effect.
    ``_send_with_timeout`` is private: entry 4 of ``docs/upstream-overrides.md``.
    """

    async def _send_with_timeout(self, send: Send, message: AsgiMessage) -> None:
        if self.send_timeout is None:
            await send(message)
        else:
            await super()._send_with_timeout(send, message)


def stream_turn(turn: Turn, timing: StreamTiming) -> EventSourceResponse:
    """An SSE response for ``turn``; ``turn.aclose()`` runs even if streaming never starts.

    A ``: ping`` comment goes out after ``timing.ping_seconds`` without an event (keeps proxies
    from closing an idle connection while the model thinks). On shutdown the stream may go on
    for ``timing.drain_seconds`` (see the module docstring).
    """
    shutdown = anyio.Event()
    return EventStream(
        _frames(turn, shutdown, timing.drain_seconds),
        shutdown_event=shutdown,
        shutdown_grace_period=timing.drain_seconds + STOP_MARGIN_SECONDS,
        ping=timing.ping_seconds,
        sep="\n",
        ping_message_factory=lambda: ServerSentEvent(comment="ping"),
        background=BackgroundTask(turn.aclose),
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
