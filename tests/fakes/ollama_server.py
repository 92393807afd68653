"""A fake of Ollama's chat API (``POST /api/chat``) on 127.0.0.1, for ``LLM_MODEL=ollama:...``
(LangChain's ``ChatOllama``): a streamed reply as newline-delimited JSON chunks ending with
``"done": true`` and the token counts, a whole one as one such object, a failure as
``{"error": ...}`` with its status. It records each request's body."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from starlette.types import Receive, Scope, Send

from tests.fakes.threaded_server import ScriptedService, in_pieces, read_body

CREATED_AT = "2026-11-27T12:00:00.000000Z"


@dataclass(frozen=True, slots=True)
class OllamaReply:
    """``text`` in ``pieces`` streamed chunks; or, with ``status``, an error."""

    text: str = "Hello from the fake Llama."
    pieces: int = 3
    status: int | None = None


class FakeOllamaServer(ScriptedService[OllamaReply, dict[str, Any]]):
    """``with FakeOllamaServer() as server:``; ``base_url`` for ``LLM_BASE_URL``."""

    def __init__(self) -> None:
        super().__init__(self._app, name="fake Ollama server", default=OllamaReply())

    @property
    def base_url(self) -> str:
        return self.root_url

    async def _app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = json.loads(await read_body(receive) or b"{}")
        reply, _ = self._take(body)
        if scope["path"] != "/api/chat":
            await _send(send, 404, [{"error": "not found"}])
        elif reply.status is not None:
            await _send(send, reply.status, [{"error": "scripted failure"}])
        elif body.get("stream", True):
            chunks = [_chunk(body, piece) for piece in in_pieces(reply.text, reply.pieces)]
            await _send(send, 200, [*chunks, _last(body, reply, "")], ndjson=True)
        else:
            await _send(send, 200, [_last(body, reply, reply.text)])


def _chunk(body: dict[str, Any], text: str) -> dict[str, Any]:
    message = {"role": "assistant", "content": text}
    return {"model": body.get("model"), "created_at": CREATED_AT, "message": message, "done": False}


def _last(body: dict[str, Any], reply: OllamaReply, text: str) -> dict[str, Any]:
    return {
        **_chunk(body, text),
        "done": True,
        "done_reason": "stop",
        "total_duration": 1_000_000,
        "prompt_eval_count": sum(len(str(m.get("content", "")).split()) for m in body.get("messages", [])),
        "eval_count": len(reply.text.split()),
    }


async def _send(send: Send, status: int, objects: list[dict[str, Any]], *, ndjson: bool = False) -> None:
    kind = b"application/x-ndjson" if ndjson else b"application/json"
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", kind)]})
    for item in objects:
        line = json.dumps(item).encode() + (b"\n" if ndjson else b"")
        await send({"type": "http.response.body", "body": line, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})
