"""The HTTP edge: request ids, size limit, fixed 500, 503 and recovery, health, docs."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from parley.application.principal import Principal
from tests.e2e.conftest import PASSWORD, AppFactory, register, signed_up
from tests.e2e.test_auth_api import new_email
from tests.fakes.tcp_proxy import CuttableProxy

pytestmark = pytest.mark.e2e


async def test_every_response_carries_a_request_id(client: httpx.AsyncClient) -> None:
    plain = await client.get("/health")
    echoed = await client.get("/health", headers={"X-Request-ID": "client-abc.123"})
    insane = await client.get("/health", headers={"X-Request-ID": "bad id\twith spaces"})
    error = await client.get("/api/v1/users/me")

    assert len(plain.headers["x-request-id"]) >= 16
    assert echoed.headers["x-request-id"] == "client-abc.123"
    assert insane.headers["x-request-id"] != "bad id\twith spaces"
    assert error.headers["x-request-id"]


async def test_a_body_over_the_limit_is_413(start_app: AppFactory) -> None:
    _, client = await start_app(http={"max_body_bytes": 2048})

    response = await client.post(
        "/api/v1/auth/register", json={"email": new_email(), "password": PASSWORD + "x" * 4000}
    )

    assert response.status_code == 413
    assert response.json() == {"detail": "Request body too large"}
    assert response.headers["x-request-id"]


async def test_a_streamed_body_over_the_limit_is_413_without_content_length(start_app: AppFactory) -> None:
    _, client = await start_app(http={"max_body_bytes": 2048})

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b"x" * 1024

    response = await client.post(
        "/api/v1/auth/register", content=chunks(), headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 413


class _ExplodingProfile:
    async def execute(self, principal: Principal) -> None:
        raise RuntimeError("SELECT password_hash FROM users -- secret internals")


async def test_a_bug_is_a_fixed_500_without_internals(start_app: AppFactory) -> None:
    _, client = await start_app(overrides={"get_profile": _ExplodingProfile()})
    headers = await signed_up(client, new_email())

    response = await client.get("/api/v1/users/me", headers=headers)

    assert response.status_code == 500
    assert response.json() == {"detail": "Internal server error"}
    assert "SELECT" not in response.text
    assert response.headers["x-request-id"]


async def test_unknown_routes_and_methods_keep_the_json_shape(client: httpx.AsyncClient) -> None:
    missing = await client.get("/api/v1/nope")
    wrong_method = await client.put("/health")

    assert missing.status_code == 404
    assert "detail" in missing.json()
    assert wrong_method.status_code == 405
    assert "detail" in wrong_method.json()


async def test_health_reports_the_database(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"] == {"database": "ok"}
    assert body["environment"] == "development"
    assert body["version"]


async def test_database_down_is_503_and_the_service_recovers_by_itself(
    start_app: AppFactory, e2e_database_url: str
) -> None:
    proxy = CuttableProxy(e2e_database_url)
    await proxy.start()
    _, client = await start_app(db={"url": proxy.url})
    email = new_email()
    await register(client, email)

    await proxy.cut()
    health = await client.get("/health")
    login = await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    register_down = await client.post(
        "/api/v1/auth/register", json={"email": new_email(), "password": PASSWORD}
    )

    assert health.status_code == 503
    assert health.json()["status"] == "unavailable"
    assert health.json()["checks"] == {"database": "unavailable"}
    for response in (login, register_down):
        assert response.status_code == 503, response.text
        assert response.json() == {"detail": "Service unavailable"}

    await proxy.restore()
    assert (await client.get("/health")).status_code == 200
    recovered = await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert recovered.status_code == 200
    await proxy.cut()


async def test_health_answers_while_logins_hash_off_the_event_loop(start_app: AppFactory) -> None:
    _, client = await start_app(auth={"bcrypt_rounds": 12, "bcrypt_workers": 2})
    email = new_email()
    await register(client, email)

    logins = [
        asyncio.create_task(client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD}))
        for _ in range(8)
    ]
    await asyncio.sleep(0.05)  # let the logins reach bcrypt
    started = time.perf_counter()
    health = await client.get("/health")
    health_seconds = time.perf_counter() - started
    pending_when_health_answered = sum(not task.done() for task in logins)

    results = await asyncio.gather(*logins)
    assert health.status_code == 200
    assert all(r.status_code == 200 for r in results)
    # The outcome, not a stopwatch: health got its answer while logins were still hashing.
    assert pending_when_health_answered > 0, f"health took {health_seconds:.3f}s"


async def test_openapi_documents_every_route_with_examples(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    docs = await client.get("/docs")

    assert docs.status_code == 200
    paths = spec["paths"]
    for path in [
        "/health",
        "/api/v1/auth/register",
        "/api/v1/auth/login",
        "/api/v1/auth/refresh",
        "/api/v1/auth/logout",
        "/api/v1/users/me",
        "/api/v1/users/me/password",
    ]:
        assert path in paths
    login_body = paths["/api/v1/auth/login"]["post"]["requestBody"]["content"]
    assert {"application/json", "application/x-www-form-urlencoded"} <= set(login_body)
    assert "422" in paths["/api/v1/auth/register"]["post"]["responses"]
    assert spec["components"]["securitySchemes"]


async def test_cors_allows_only_configured_origins_with_credentials(start_app: AppFactory) -> None:
    _, client = await start_app(http={"cors_origins": "https://app.example"})
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}

    allowed = await client.options(
        "/api/v1/auth/login", headers={"Origin": "https://app.example", **preflight}
    )
    refused = await client.options(
        "/api/v1/auth/login", headers={"Origin": "https://evil.example", **preflight}
    )

    assert allowed.headers["access-control-allow-origin"] == "https://app.example"
    assert allowed.headers["access-control-allow-credentials"] == "true"
    assert "access-control-allow-origin" not in refused.headers


async def test_a_wildcard_origin_never_comes_with_credentials(start_app: AppFactory) -> None:
    _, client = await start_app(http={"cors_origins": "*"})

    response = await client.get("/health", headers={"Origin": "https://any.example"})

    assert response.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in response.headers
