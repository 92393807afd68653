"""Pure ASGI middleware: body size and time limits, and the last-resort error guard.

Pure ASGI (not ``BaseHTTPMiddleware``) so streamed responses pass through untouched
and the per-request cost stays at a couple of function calls.

A request can end early without anything being broken: the client leaves mid-body
(Starlette's ``ClientDisconnect``), or a limit refuses its body and answers for it
(:class:`BodyRefused`). The last-resort guard tells those from bugs: only a bug is
logged as "Unhandled error" and answered with the fixed 500.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Mapping

from loguru import logger
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from parley.adapters.inbound.http.errors import INTERNAL_ERROR, REQUEST_TIMEOUT
from parley.adapters.inbound.http.json_response import NewlineJSONResponse

_TOO_LARGE = {"detail": "Request body too large"}
_TIMED_OUT = {"detail": REQUEST_TIMEOUT}
_CLOSE = {"Connection": "close"}
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


def is_sane_request_id(value: str) -> bool:
    """Echo a client's request id only if it is a short token (no spaces, no control bytes)."""
    return bool(_SANE_REQUEST_ID.match(value))


async def _send_json(
    send: Send, status: int, body: dict[str, str], headers: Mapping[str, str] | None = None
) -> None:
    """Answer from the middleware itself, rendered like every other JSON body."""
    response = NewlineJSONResponse(body, status_code=status, headers=headers)
    await send({"type": "http.response.start", "status": status, "headers": response.raw_headers})
    await send({"type": "http.response.body", "body": response.body})


class _Answer:
    """The response side of one request, as a middleware sees it: whether the app has started
    answering, and whether the middleware already answered for it (413, 408), after which
    whatever the app still sends is dropped."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self.started = self.refused = False

    async def send(self, message: Message) -> None:
        if self.refused:
            return
        self.started = self.started or message["type"] == "http.response.start"
        await self._send(message)

    async def refuse(
        self, status: int, body: dict[str, str], headers: Mapping[str, str] | None = None
    ) -> None:
        """Answer in the app's place, once, unless the app has started answering itself."""
        if not self.started and not self.refused:
            self.refused = True
            await _send_json(self._send, status, body, headers)


class BodyRefused(Exception):
    """A limit refused the request body and has already answered for it (413, 408).

    Raised from the limit's ``receive`` so the app stops waiting for a body it will not
    get. The middleware that refused swallows it on its way out; every layer in between
    (the auth audit, the last-resort guard) must let it pass as what it is: the client
    sent too much or too slowly, not a bug.
    """


class _BodyTooLarge(BodyRefused):
    pass


class BodyLimitMiddleware:
    """Refuse request bodies over ``max_bytes`` with 413, by header or while streaming."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await _send_json(send, 413, _TOO_LARGE)
            return
        received = 0
        answer = _Answer(send)

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # Answer now: frameworks may turn the exception below into their own 400.
                    await answer.refuse(413, _TOO_LARGE)
                    raise _BodyTooLarge
            return message

        with contextlib.suppress(_BodyTooLarge):
            await self.app(scope, limited_receive, answer.send)


class _BodyTimedOut(BodyRefused):
    pass


class BodyTimeoutMiddleware:
    """End a request with 408 when its body stalls for ``timeout_seconds``.

    The clock runs only while the app waits in ``receive`` for more of the body, and
    restarts with every piece that arrives: a slow but steady upload is served, one that
    stops is not held open forever (uvicorn bounds only idle keep-alive connections).
    Pure ASGI, so it works under any server; ``parley serve`` bounds request heads in
    the server itself (``server_protocol``).

    Not timed:
    - ``receive`` once the body is complete: an app then waits there for the client to
      leave (a streamed reply, for minutes);
    - once a response has started: a 408 can no longer be sent, and the response's own
      lifetime bounds the request.

    The 408 says ``Connection: close`` (the rest of the body may still arrive, so the
    connection cannot carry another request); then :class:`BodyRefused` stops the app,
    whose own answer, if any, is dropped.
    """

    def __init__(self, app: ASGIApp, timeout_seconds: float) -> None:
        self.app, self.timeout = app, timeout_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body_complete = False
        answer = _Answer(send)

        async def timed_receive() -> Message:
            nonlocal body_complete
            if body_complete or answer.started:
                return await receive()
            try:
                async with asyncio.timeout(self.timeout):
                    message = await receive()
            except TimeoutError:
                if answer.started:  # the app answered meanwhile (from another task): nothing to refuse
                    return await receive()
                await answer.refuse(408, _TIMED_OUT, _CLOSE)
                raise _BodyTimedOut from None
            body_complete = message["type"] != "http.request" or not message.get("more_body", False)
            return message

        with contextlib.suppress(_BodyTimedOut):
            await self.app(scope, timed_receive, answer.send)


class UnhandledErrorMiddleware:
    """Turn any exception that escaped the handlers into the fixed 500 body.

    The traceback is logged once (with the request id); the client sees nothing of it.
    Sits inside the request-id middleware so the 500 still carries ``X-Request-ID``.

    Two exceptions are not bugs and are neither logged nor answered here:

    - ``ClientDisconnect``: the client left (Starlette raises it when the app reads a body
      the client stopped sending). There is nobody to answer; ``MetricsMiddleware``
      counts the request as 499 and its access line is the one trace.
    - :class:`BodyRefused`: a limit has answered (413, 408); it is re-raised to that
      limit's middleware, which ends the request, whichever side of this guard it sits.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        answer = _Answer(send)
        try:
            await self.app(scope, receive, answer.send)
        except ClientDisconnect:
            return
        except BodyRefused:
            raise
        except Exception as exc:
            logger.opt(exception=exc).error(
                "Unhandled error on {} {}", scope.get("method"), scope.get("path")
            )
            await answer.refuse(500, {"detail": INTERNAL_ERROR})
