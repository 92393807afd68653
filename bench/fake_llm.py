"""A minimal OpenAI-compatible chat-completions server for benchmarks (run as its own process).

Behaviour is set at run time through ``POST /_config``: ``first_token_delay`` and
``token_delay`` (seconds) and ``tokens`` (reply length). ``GET /_stats`` reports how
many requests were served, when each arrived, and, for streams the client abandoned,
when the fake noticed the client leaving (it stops generating at once).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

MODEL = "bench-model"
CONFIG: dict[str, float] = {"first_token_delay": 0.0, "token_delay": 0.0, "tokens": 16}


def _fresh_stats() -> dict[str, Any]:
    counts = {"requests": 0, "streams_completed": 0, "streams_abandoned": 0, "fact_requests": 0}
    return {**counts, "abandoned_at": [], "arrived_at": []}


STATS: dict[str, Any] = _fresh_stats()


def _chunk(delta: dict[str, Any], finish: str | None = None, usage: dict[str, int] | None = None) -> bytes:
    payload: dict[str, Any] = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": MODEL,
        "choices": [] if usage else [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    if usage:
        payload["usage"] = usage
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


def _facts(body: dict[str, Any]) -> str | None:
    """The answer to Parley's long-term memory asking for the facts a user stated (its system
    prompt says so): one new fact each time, so memory really stores, and later recalls, facts."""
    messages = body.get("messages") or [{}]
    if "long-term memory of facts" not in str(messages[0].get("content", "")):
        return None
    STATS["fact_requests"] += 1
    return json.dumps([f"The user's lucky number is {STATS['fact_requests']}"])


def _usage(tokens: int) -> dict[str, int]:
    return {"prompt_tokens": 32, "completion_tokens": tokens, "total_tokens": 32 + tokens}


async def completions(request: Request) -> Any:
    body = await request.json()
    STATS["requests"] += 1
    STATS["arrived_at"].append(time.time())
    tokens = int(CONFIG["tokens"])
    if not body.get("stream"):
        await asyncio.sleep(CONFIG["first_token_delay"] + CONFIG["token_delay"] * tokens)
        message = {"role": "assistant", "content": _facts(body) or "tok " * tokens}
        return JSONResponse(
            {
                "id": "chatcmpl-bench",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": MODEL,
                "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                "usage": _usage(tokens),
            }
        )
    return _SseStream(tokens)


class _SseStream:
    """A raw ASGI streamed answer that watches for the client leaving while it generates."""

    def __init__(self, tokens: int) -> None:
        self.tokens = tokens

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        generation = asyncio.ensure_future(self._generate(send))
        left = asyncio.ensure_future(_wait_for_disconnect(receive))
        done, _ = await asyncio.wait({generation, left}, return_when=asyncio.FIRST_COMPLETED)
        if generation in done:
            left.cancel()
            STATS["streams_completed"] += 1
            return
        generation.cancel()
        STATS["streams_abandoned"] += 1
        STATS["abandoned_at"].append(time.time())

    async def _generate(self, send: Any) -> None:
        headers = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})

        async def emit(data: bytes) -> None:
            await send({"type": "http.response.body", "body": data, "more_body": True})

        await emit(_chunk({"role": "assistant", "content": ""}))
        await asyncio.sleep(CONFIG["first_token_delay"])
        for _ in range(self.tokens):
            await emit(_chunk({"content": "tok "}))
            if CONFIG["token_delay"]:
                await asyncio.sleep(CONFIG["token_delay"])
        await emit(_chunk({}, finish="stop"))
        await emit(_chunk({}, usage=_usage(self.tokens)))
        await send({"type": "http.response.body", "body": b"data: [DONE]\n\n", "more_body": False})


async def _wait_for_disconnect(receive: Any) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def configure(request: Request) -> JSONResponse:
    CONFIG.update({k: float(v) for k, v in (await request.json()).items()})
    STATS.update(_fresh_stats())
    return JSONResponse(CONFIG)


async def stats(_: Request) -> JSONResponse:
    return JSONResponse(STATS)


app = Starlette(
    routes=[
        Route("/v1/chat/completions", completions, methods=["POST"]),
        Route("/_config", configure, methods=["POST"]),
        Route("/_stats", stats, methods=["GET"]),
    ]
)

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", backlog=4096)
