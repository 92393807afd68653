"""API.md, Auth section, through the whole stack on real PostgreSQL."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest

from tests.e2e.conftest import PASSWORD, TEST_SECRET, AppFactory, log_in, register, signed_up

pytestmark = pytest.mark.e2e


def new_email() -> str:
    return f"user-{uuid.uuid4().hex[:10]}@example.com"


def bearer(tokens: dict[str, Any], kind: str = "access_token") -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens[kind]}"}


def assert_not_authenticated(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.json() == {"detail": "Not authenticated"}
    assert response.headers["www-authenticate"] == "Bearer"


async def test_register_returns_the_user_without_secrets(client: httpx.AsyncClient) -> None:
    email = new_email()
    response = await client.post(
        "/api/v1/auth/register", json={"email": f"  {email.upper()} ", "password": PASSWORD}
    )

    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "email", "created_at", "updated_at"}
    assert body["email"] == email
    assert body["created_at"].endswith("Z")
    assert PASSWORD not in response.text


async def test_register_lists_each_broken_password_rule(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/auth/register", json={"email": new_email(), "password": "abc"})

    assert response.status_code == 422
    body = response.json()
    assert body["detail"] == "Validation error"
    messages = [e["message"] for e in body["errors"] if e["field"] == "password"]
    assert len(messages) == 4
    assert "Password must contain at least one number" in messages


async def test_register_twice_with_another_case_is_a_400(client: httpx.AsyncClient) -> None:
    email = new_email()
    await register(client, email)

    response = await client.post("/api/v1/auth/register", json={"email": email.upper(), "password": PASSWORD})

    assert response.status_code == 400
    assert response.json() == {"detail": "Email already registered"}


def full_width(text: str) -> str:
    """The full-width look-alike of ASCII letters and digits (``a`` -> U+FF41)."""
    return "".join(chr(ord(c) + 0xFEE0) if c.isalnum() else c for c in text)


async def test_a_look_alike_of_a_registered_email_is_that_email(client: httpx.AsyncClient) -> None:
    email = new_email()
    await register(client, email)

    twin = await client.post("/api/v1/auth/register", json={"email": full_width(email), "password": PASSWORD})
    login = await client.post("/api/v1/auth/login", json={"email": full_width(email), "password": PASSWORD})

    assert twin.status_code == 400
    assert twin.json() == {"detail": "Email already registered"}
    assert login.status_code == 200


@pytest.mark.parametrize("hidden", ["\u200b", "\u202e", "\x1b", "\x7f"])
async def test_an_email_with_an_invisible_character_is_422(client: httpx.AsyncClient, hidden: str) -> None:
    email = new_email()

    response = await client.post(
        "/api/v1/auth/register", json={"email": email.replace("@", f"{hidden}@"), "password": PASSWORD}
    )

    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["email"]


@pytest.mark.parametrize(
    ("content", "field"),
    [(b"{not json", "body"), (b"", "body"), (b'{"email": "a@example.com"}', "password"), (b"[]", "body")],
)
async def test_malformed_bodies_are_422_with_the_offending_field(
    client: httpx.AsyncClient, content: bytes, field: str
) -> None:
    response = await client.post(
        "/api/v1/auth/register", content=content, headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 422
    assert field in [e["field"] for e in response.json()["errors"]]


async def test_login_accepts_json_and_the_oauth2_form(client: httpx.AsyncClient) -> None:
    email = new_email()
    await register(client, email)

    json_login = await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    form_login = await client.post("/api/v1/auth/login", data={"username": email, "password": PASSWORD})

    for response in (json_login, form_login):
        assert response.status_code == 200
        body = response.json()
        assert body["token_type"] == "bearer"
        assert body["expires_in"] > 0
        assert body["refresh_expires_in"] > body["expires_in"]
        me = await client.get("/api/v1/users/me", headers=bearer(body))
        assert me.json()["email"] == email


async def test_wrong_password_and_unknown_email_look_the_same(client: httpx.AsyncClient) -> None:
    email = new_email()
    await register(client, email)

    wrong = await client.post("/api/v1/auth/login", json={"email": email, "password": "Wr0ng!Password"})
    unknown = await client.post("/api/v1/auth/login", json={"email": new_email(), "password": PASSWORD})

    for response in (wrong, unknown):
        assert response.status_code == 401
        assert response.json() == {"detail": "Invalid credentials"}
        assert response.headers["www-authenticate"] == "Bearer"
    assert wrong.content == unknown.content


async def test_every_character_of_a_long_password_counts(client: httpx.AsyncClient) -> None:
    email = new_email()
    long_password = "Aa1!" + "x" * 96  # 100 bytes; bcrypt alone would ignore bytes 73+
    await register(client, email, long_password)

    near_miss = long_password[:90] + "y" * 10
    response = await client.post("/api/v1/auth/login", json={"email": email, "password": near_miss})

    assert response.status_code == 401
    await log_in(client, email, long_password)


async def test_refresh_rotates_and_reuse_revokes_the_login(client: httpx.AsyncClient) -> None:
    email = new_email()
    await register(client, email)
    first = await log_in(client, email)

    rotated = await client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert rotated.status_code == 200
    second = rotated.json()
    assert (await client.get("/api/v1/users/me", headers=bearer(second))).status_code == 200

    reused = await client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert_not_authenticated(reused)
    assert_not_authenticated(await client.get("/api/v1/users/me", headers=bearer(second)))
    again = await client.post("/api/v1/auth/refresh", json={"refresh_token": second["refresh_token"]})
    assert_not_authenticated(again)


async def test_access_and_refresh_tokens_are_not_interchangeable(client: httpx.AsyncClient) -> None:
    email = new_email()
    await register(client, email)
    tokens = await log_in(client, email)

    assert_not_authenticated(await client.get("/api/v1/users/me", headers=bearer(tokens, "refresh_token")))
    assert_not_authenticated(
        await client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["access_token"]})
    )


def _forge(claims: dict[str, Any], *, key: str = TEST_SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, key, algorithm=algorithm)


async def test_tampered_expired_and_unsigned_tokens_are_refused(client: httpx.AsyncClient) -> None:
    email = new_email()
    await register(client, email)
    tokens = await log_in(client, email)
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    past = int((datetime.now(UTC) - timedelta(days=2)).timestamp())
    header, payload, signature = tokens["access_token"].split(".")
    # "" is PyJWT's no-key for "none" (None no longer type-checks once cryptography is installed).
    unsigned = jwt.encode(claims, "", algorithm="none")

    candidates = [
        f"{header}.{payload}.{signature[:-4]}AAAA",  # bad signature
        _forge({**claims, "sub": str(uuid.uuid4())}, key="another-secret-" + "y" * 40),
        _forge({**claims, "iat": past - 10, "nbf": past - 10, "exp": past}),  # expired
        unsigned,
        "not-a-token",
    ]
    for token in candidates:
        response = await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
        assert_not_authenticated(response)


async def test_missing_or_non_bearer_authorization_is_401(client: httpx.AsyncClient) -> None:
    assert_not_authenticated(await client.get("/api/v1/users/me"))
    assert_not_authenticated(await client.get("/api/v1/users/me", headers={"Authorization": "Basic abc"}))


async def test_logout_kills_the_access_and_refresh_token(client: httpx.AsyncClient) -> None:
    email = new_email()
    await register(client, email)
    tokens = await log_in(client, email)

    response = await client.post(
        "/api/v1/auth/logout", headers=bearer(tokens), json={"refresh_token": tokens["refresh_token"]}
    )

    assert response.status_code == 204
    assert_not_authenticated(await client.get("/api/v1/users/me", headers=bearer(tokens)))
    assert_not_authenticated(
        await client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    )


async def test_logout_without_a_body_works(client: httpx.AsyncClient) -> None:
    headers = await signed_up(client, new_email())

    assert (await client.post("/api/v1/auth/logout", headers=headers)).status_code == 204
    assert_not_authenticated(await client.get("/api/v1/users/me", headers=headers))


async def test_a_logout_reaches_another_instance_within_the_session_cache_lifetime(
    start_app: AppFactory,
) -> None:
    _, here = await start_app(auth={"session_cache_seconds": 0.5})
    _, elsewhere = await start_app(auth={"session_cache_seconds": 0.5})
    email = new_email()
    await register(here, email)
    headers = {"Authorization": f"Bearer {(await log_in(here, email))['access_token']}"}
    assert (await elsewhere.get("/api/v1/users/me", headers=headers)).status_code == 200

    assert (await here.post("/api/v1/auth/logout", headers=headers)).status_code == 204
    logged_out = time.monotonic()

    assert (await here.get("/api/v1/users/me", headers=headers)).status_code == 401  # at once
    while (await elsewhere.get("/api/v1/users/me", headers=headers)).status_code == 200:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    assert time.monotonic() - logged_out < 0.5 + 2.0  # the cache lifetime, plus a busy machine's slack
