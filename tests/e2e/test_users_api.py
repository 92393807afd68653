"""API.md, Users section, through the whole stack on real PostgreSQL."""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.conftest import PASSWORD, log_in, register, signed_up
from tests.e2e.test_auth_api import assert_not_authenticated, bearer, new_email

pytestmark = pytest.mark.e2e


async def test_me_returns_the_profile(client: httpx.AsyncClient) -> None:
    email = new_email()
    headers = await signed_up(client, email)

    response = await client.get("/api/v1/users/me", headers=headers)

    assert response.status_code == 200
    assert response.json()["email"] == email
    assert "password" not in response.text
    assert "hash" not in response.text


async def test_change_email_needs_the_current_password(client: httpx.AsyncClient) -> None:
    headers = await signed_up(client, new_email())

    response = await client.patch(
        "/api/v1/users/me", headers=headers, json={"email": new_email(), "current_password": "Wr0ng!pass"}
    )

    assert response.status_code == 400
    assert response.json() == {"detail": "Current password is incorrect"}


async def test_change_email_to_a_taken_one_is_refused(client: httpx.AsyncClient) -> None:
    taken = new_email()
    await register(client, taken)
    headers = await signed_up(client, new_email())

    response = await client.patch(
        "/api/v1/users/me", headers=headers, json={"email": taken.upper(), "current_password": PASSWORD}
    )

    assert response.status_code == 400
    assert response.json() == {"detail": "Email already registered"}


async def test_change_email_then_log_in_with_the_new_one(client: httpx.AsyncClient) -> None:
    headers = await signed_up(client, new_email())
    new = new_email()

    response = await client.patch(
        "/api/v1/users/me", headers=headers, json={"email": new, "current_password": PASSWORD}
    )

    assert response.status_code == 200
    assert response.json()["email"] == new
    await log_in(client, new)


async def test_change_password_revokes_other_logins(client: httpx.AsyncClient) -> None:
    email = new_email()
    await register(client, email)
    mine, other = await log_in(client, email), await log_in(client, email)

    response = await client.post(
        "/api/v1/users/me/password",
        headers=bearer(mine),
        json={"current_password": PASSWORD, "new_password": "N3w!Passw0rd"},
    )

    assert response.status_code == 204
    assert (await client.get("/api/v1/users/me", headers=bearer(mine))).status_code == 200
    assert_not_authenticated(await client.get("/api/v1/users/me", headers=bearer(other)))
    assert_not_authenticated(
        await client.post("/api/v1/auth/refresh", json={"refresh_token": other["refresh_token"]})
    )
    await log_in(client, email, "N3w!Passw0rd")


async def test_change_password_applies_the_policy_to_new_password(client: httpx.AsyncClient) -> None:
    headers = await signed_up(client, new_email())

    response = await client.post(
        "/api/v1/users/me/password",
        headers=headers,
        json={"current_password": PASSWORD, "new_password": "short"},
    )

    assert response.status_code == 422
    assert {e["field"] for e in response.json()["errors"]} == {"new_password"}


async def test_delete_me_removes_the_account_and_its_tokens(client: httpx.AsyncClient) -> None:
    email = new_email()
    await register(client, email)
    tokens = await log_in(client, email)

    assert (await client.delete("/api/v1/users/me", headers=bearer(tokens))).status_code == 204

    assert_not_authenticated(await client.get("/api/v1/users/me", headers=bearer(tokens)))
    assert_not_authenticated(
        await client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    )
    response = await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert response.status_code == 401
    await register(client, email)  # the address is free again
