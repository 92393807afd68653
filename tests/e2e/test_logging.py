"""What the logs say about requests: request ids, user ids, the auth audit, and no secrets.

Each test sends all output through ``configure_logging`` into a buffer (the ``capture_logs``
fixture of ``conftest.py``), which restores the logging set-up afterwards.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import uuid
from typing import Any

import httpx
import psycopg
import pytest
import uvicorn

from parley.adapters.inbound.http.audit import email_digest
from tests.e2e.conftest import PASSWORD, AppFactory, Capture

pytestmark = pytest.mark.e2e

MESSAGE_BODY = "Confidential plan 7c1f: what is 17 * 23?"


async def _auth_and_chat(client: httpx.AsyncClient, email: str) -> dict[str, Any]:
    """Register, fail a login, log in, refresh, chat and log out; returns what must stay secret
    and the request ids of the responses."""
    credentials = {"email": email, "password": PASSWORD}
    responses = [await client.post("/api/v1/auth/register", json=credentials)]
    wrong = {"email": email, "password": "Wr0ng!Passw0rd-guess"}
    responses.append(await client.post("/api/v1/auth/login", json=wrong))
    responses.append(await client.post("/api/v1/auth/login", json=credentials))
    first = responses[-1].json()
    responses.append(
        await client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    )
    refreshed = responses[-1].json()
    # The used token again: the login is revoked, so log in once more to go on.
    responses.append(
        await client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    )
    responses.append(await client.post("/api/v1/auth/login", json=credentials))
    tokens = responses[-1].json()
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    responses.append(await client.post("/api/v1/chat/sessions", json={}, headers=headers))
    session_id = responses[-1].json()["id"]
    url = f"/api/v1/chat/sessions/{session_id}/messages"
    responses.append(await client.post(url, json={"content": MESSAGE_BODY}, headers=headers))
    reply = responses[-1].json()["reply"]["content"]
    responses.append(await client.post("/api/v1/auth/logout", headers=headers))
    assert [r.status_code for r in responses] == [201, 401, 200, 200, 401, 200, 201, 200, 204]
    return {
        "secrets": [
            PASSWORD,
            wrong["password"],
            email,
            first["access_token"],
            first["refresh_token"],
            refreshed["access_token"],
            refreshed["refresh_token"],
            tokens["access_token"],
            tokens["refresh_token"],
            MESSAGE_BODY,
            reply,
        ],
        "request_ids": [r.headers["X-Request-ID"] for r in responses],
        "user_id": responses[0].json()["id"],
    }


def _password_hash(database_url: str, email: str) -> str:
    with psycopg.connect(database_url) as connection:
        row = connection.execute("SELECT password_hash FROM users WHERE email = %s", (email,)).fetchone()
    assert row is not None
    return str(row[0])


@pytest.mark.parametrize("json_lines", [True, False], ids=["json", "human"])
async def test_logs_never_hold_secrets_but_tag_each_request(
    start_app: AppFactory, capture_logs: Capture, e2e_database_url: str, json_lines: bool
) -> None:
    buffer = capture_logs(json_lines=json_lines)
    _, client = await start_app()
    email = f"Logs-{uuid.uuid4().hex[:8]}@Example.com"

    seen = await _auth_and_chat(client, email)

    output = buffer.getvalue()
    secrets = [*seen["secrets"], email.lower(), _password_hash(e2e_database_url, email.lower())]
    leaked = [secret for secret in secrets if secret in output]
    assert leaked == []
    assert all(request_id in output for request_id in seen["request_ids"])
    assert email_digest(email) in output
    assert seen["user_id"] in output


async def test_json_lines_carry_request_id_user_id_and_the_audit(
    start_app: AppFactory, capture_logs: Capture
) -> None:
    buffer = capture_logs(json_lines=True)
    _, client = await start_app()
    email = f"json-{uuid.uuid4().hex[:8]}@example.com"

    seen = await _auth_and_chat(client, email)
    logging.getLogger("uvicorn.error").warning("from the standard library")

    lines = [json.loads(line) for line in buffer.getvalue().splitlines()]
    assert lines
    assert all("request_id" in line and "time" in line and "level" in line for line in lines)
    audit = [(line["action"], line["outcome"]) for line in lines if line.get("audit") == "auth"]
    assert audit == [
        ("register", "success"),
        ("login", "invalid_credentials"),
        ("login", "success"),
        ("refresh", "success"),
        ("refresh", "token_reused"),
        ("login", "success"),
        ("logout", "success"),
    ]
    reused = next(line for line in lines if line.get("outcome") == "token_reused")
    assert reused["user_id"] == seen["user_id"]  # whose login a stolen token just revoked
    failed_login = next(line for line in lines if line.get("outcome") == "invalid_credentials")
    assert failed_login["email_hash"] == email_digest(email)
    assert failed_login["request_id"] == seen["request_ids"][1]
    assert failed_login["client"]
    access = [line for line in lines if "duration_ms" in line]
    assert [line["request_id"] for line in access] == seen["request_ids"]
    chat_turn = access[7]
    assert chat_turn["route"] == "/api/v1/chat/sessions/{session_id}/messages"
    assert chat_turn["status"] == 200
    assert chat_turn["user_id"] == seen["user_id"]
    assert "user_id" not in access[1]  # a failed login names no user
    stdlib = [line for line in lines if line["message"] == "from the standard library"]
    assert stdlib
    assert stdlib[0]["level"] == "WARNING"
    assert stdlib[0]["logger"] == "uvicorn.error"


class _ExplodingProfile:
    async def execute(self, *_: object) -> None:
        raise RuntimeError("a bug deep down")


async def test_a_crash_is_one_json_line_with_its_traceback_and_request_id(
    start_app: AppFactory, capture_logs: Capture
) -> None:
    buffer = capture_logs(json_lines=True)
    _, client = await start_app(overrides={"get_profile": _ExplodingProfile()})
    email = f"crash-{uuid.uuid4().hex[:8]}@example.com"
    await client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
    tokens = (await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})).json()

    response = await client.get(
        "/api/v1/users/me", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )

    assert response.status_code == 500
    lines = [json.loads(line) for line in buffer.getvalue().splitlines()]
    crash = [line for line in lines if line.get("exception_type") == "RuntimeError"]
    assert len(crash) == 1
    assert crash[0]["request_id"] == response.headers["X-Request-ID"]
    assert "a bug deep down" in crash[0]["exception"]
    assert "Traceback" in crash[0]["exception"]


async def test_a_served_request_has_exactly_one_access_line(
    capture_logs: Capture, start_app: AppFactory
) -> None:
    """Through a real uvicorn server set up as ``parley serve`` does (uvicorn configures its
    logging first, then the app's factory configures ours)."""
    app, _ = await start_app()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(app, port=port, log_config=None, access_log=False, lifespan="off")
    buffer = capture_logs(json_lines=True)
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:  # noqa: ASYNC110 - uvicorn offers no event to wait on
            await asyncio.sleep(0.01)
        async with httpx.AsyncClient() as client:
            assert (await client.get(f"http://127.0.0.1:{port}/health")).status_code == 200
    finally:
        server.should_exit = True
        await serving

    messages = [json.loads(line)["message"] for line in buffer.getvalue().splitlines() if line]
    assert [m for m in messages if "/health" in m] == [m for m in messages if m.startswith("GET /health 200")]
    assert len([m for m in messages if "/health" in m]) == 1
