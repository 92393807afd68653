"""Every JSON body Parley sends ends with a newline (so ``curl`` output ends its line).

Covers each way a JSON body leaves the app: a route's own answer (FastAPI's default
response class), ``/health``, the error handlers (422, 401, 404 of a route and of an
unknown path) and the pure-ASGI middleware's own 413 and 500.
"""

from __future__ import annotations

import httpx
import pytest

from parley.application.principal import Principal
from tests.e2e.conftest import PASSWORD, AppFactory, signed_up
from tests.e2e.test_auth_api import new_email

pytestmark = pytest.mark.e2e


def assert_json_line(response: httpx.Response, status: int) -> None:
    """One JSON document, then exactly one newline, and a Content-Length that counts it."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.content.endswith(b"}\n")
    assert not response.content.endswith(b"\n\n")
    assert int(response.headers["content-length"]) == len(response.content)
    response.json()


async def test_success_and_error_bodies_end_with_a_newline(client: httpx.AsyncClient) -> None:
    headers = await signed_up(client, new_email())

    assert_json_line(await client.get("/health"), 200)
    assert_json_line(await client.get("/api/v1/users/me", headers=headers), 200)
    assert_json_line(await client.post("/api/v1/chat/sessions", headers=headers, json={}), 201)
    assert_json_line(await client.post("/api/v1/auth/register", json={"email": "x", "password": ""}), 422)
    assert_json_line(await client.get("/api/v1/users/me"), 401)
    missing = f"/api/v1/chat/sessions/{'0' * 8}-0000-0000-0000-{'0' * 12}"
    assert_json_line(await client.get(missing, headers=headers), 404)
    assert_json_line(await client.get("/api/v1/nope"), 404)


async def test_the_middlewares_own_413_ends_with_a_newline(start_app: AppFactory) -> None:
    _, client = await start_app(http={"max_body_bytes": 2048})

    response = await client.post(
        "/api/v1/auth/register", json={"email": new_email(), "password": PASSWORD + "x" * 4000}
    )

    assert_json_line(response, 413)


class _ExplodingProfile:
    async def execute(self, principal: Principal) -> None:
        raise RuntimeError("a bug")


async def test_the_middlewares_own_500_ends_with_a_newline(start_app: AppFactory) -> None:
    _, client = await start_app(overrides={"get_profile": _ExplodingProfile()})
    headers = await signed_up(client, new_email())

    assert_json_line(await client.get("/api/v1/users/me", headers=headers), 500)
