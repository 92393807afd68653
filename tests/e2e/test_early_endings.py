"""Requests that end before their body is read are not server errors.

A client that leaves mid-body, and a body refused by the size limit, used to reach the
last-resort guard as exceptions: "Unhandled error" with a traceback in the log, and (for
the client that left) a 500 in ``parley_http_requests_total``. Each case here checks the
status in the metrics and the absence of that line; a real bug still gets both.

httpx's ASGI transport sends a whole body at once, so these drive the ASGI app directly
with hand-written ``receive`` callables, as ``test_chat_disconnect.py`` does.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import AppFactory, Capture, signed_up
from tests.e2e.raw_asgi import post_scope
from tests.e2e.test_auth_api import new_email
from tests.e2e.test_metrics import _samples, _value

pytestmark = pytest.mark.e2e

LOGIN = "/api/v1/auth/login"
REGISTER = "/api/v1/auth/register"
LIMIT = 2048  # the smallest MAX_BODY_BYTES the settings accept is 1024
BOUNDARY = "parley-test-boundary"

# content type -> the first chunk of a body of that type (well-formed as far as it goes)
BODY_STARTS: dict[str, bytes] = {
    "application/json": b'{"email": "' + b"a" * 1500,
    "application/x-www-form-urlencoded": b"username=" + b"a" * 1500,
    f"multipart/form-data; boundary={BOUNDARY}": (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="username"\r\n\r\n'.encode() + b"a" * 1500
    ),
}

Receive = Callable[[], Awaitable[dict[str, Any]]]


def _receiving(*messages: dict[str, Any]) -> Receive:
    """``receive`` handing out ``messages`` in order, then what a server says once the
    client is gone (or the answer is complete): ``http.disconnect``, forever."""
    pending = list(messages)

    async def receive() -> dict[str, Any]:
        await asyncio.sleep(0)
        return pending.pop(0) if pending else {"type": "http.disconnect"}

    return receive


async def _call(app: Any, scope: dict[str, Any], receive: Receive) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await asyncio.wait_for(app(scope, receive, send), timeout=10)
    return sent


async def _requests_counted(client: httpx.AsyncClient, path: str, status: int) -> float:
    samples = _samples((await client.get("/metrics")).text)
    return _value(samples, "parley_http_requests_total", route=path, status=str(status))


@pytest.mark.parametrize(
    ("path", "content_type"),
    [(LOGIN, content_type) for content_type in BODY_STARTS]
    + [(REGISTER, "application/json")],  # a body FastAPI reads for the route
)
async def test_a_client_leaving_mid_body_is_counted_499_and_logged_as_no_error(
    start_app: AppFactory, capture_logs: Capture, path: str, content_type: str
) -> None:
    buffer = capture_logs(json_lines=True)
    app, client = await start_app(http={"max_body_bytes": LIMIT})
    first_chunk = {"type": "http.request", "body": BODY_STARTS[content_type], "more_body": True}

    await _call(
        app, post_scope(path, content_type=content_type), _receiving(first_chunk, {"type": "http.disconnect"})
    )

    assert await _requests_counted(client, path, 499) == 1
    assert await _requests_counted(client, path, 500) == 0
    lines = [json.loads(line) for line in buffer.getvalue().splitlines()]
    assert not [line for line in lines if "Unhandled error" in line["message"]]
    access = [line for line in lines if line.get("route") == path and "status" in line]
    assert [(line["status"], line["level"]) for line in access] == [(499, "INFO")]


@pytest.mark.parametrize("content_type", list(BODY_STARTS))
async def test_an_oversized_login_body_is_a_413_and_logged_as_no_error(
    start_app: AppFactory, capture_logs: Capture, content_type: str
) -> None:
    buffer = capture_logs(json_lines=True)
    app, client = await start_app(http={"max_body_bytes": LIMIT})
    chunk = BODY_STARTS[content_type]
    receive = _receiving(
        {"type": "http.request", "body": chunk, "more_body": True},
        {"type": "http.request", "body": chunk, "more_body": True},  # over the limit
        {"type": "http.request", "body": b"", "more_body": False},
    )

    sent = await _call(app, post_scope(LOGIN, content_type=content_type), receive)

    assert [m["status"] for m in sent if m["type"] == "http.response.start"] == [413]
    assert [m["body"] for m in sent if m["type"] == "http.response.body"] == [
        b'{"detail":"Request body too large"}\n'
    ]
    assert await _requests_counted(client, LOGIN, 413) == 1
    assert "Unhandled error" not in buffer.getvalue()


async def test_an_abandoned_login_is_audited_as_such_not_as_an_error(
    start_app: AppFactory, capture_logs: Capture
) -> None:
    capture_logs(json_lines=True)
    app, client = await start_app(http={"max_body_bytes": LIMIT})
    content_type = "application/json"
    chunk = {"type": "http.request", "body": BODY_STARTS[content_type], "more_body": True}

    await _call(
        app, post_scope(LOGIN, content_type=content_type), _receiving(chunk, {"type": "http.disconnect"})
    )
    await _call(app, post_scope(LOGIN, content_type=content_type), _receiving(chunk, chunk))

    samples = _samples((await client.get("/metrics")).text)
    attempts = {
        labels["outcome"]: value
        for labels, value in samples["parley_auth_attempts_total"]
        if labels["action"] == "login"
    }
    assert attempts == {"client_left": 1, "body_refused": 1}


class _ExplodingProfile:
    async def execute(self, *_: object) -> None:
        raise RuntimeError("a bug deep down")


async def test_a_bug_is_still_logged_as_an_unhandled_error_and_counted_500(
    start_app: AppFactory, capture_logs: Capture
) -> None:
    buffer = capture_logs(json_lines=True)
    _, client = await start_app(overrides={"get_profile": _ExplodingProfile()})
    headers = await signed_up(client, new_email())

    response = await client.get("/api/v1/users/me", headers=headers)

    assert response.status_code == 500
    assert response.json() == {"detail": "Internal server error"}
    assert await _requests_counted(client, "/api/v1/users/me", 500) == 1
    lines = [json.loads(line) for line in buffer.getvalue().splitlines()]
    assert [line["level"] for line in lines if "Unhandled error" in line["message"]] == ["ERROR"]
