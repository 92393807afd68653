"""Two ``parley serve`` processes on one PostgreSQL and one Redis behave as one service.

This is what lets Kubernetes (deploy/kubernetes) run several pods: a rate limit spent on one
instance is spent on the other, a session claimed by a turn on one is refused (409) on the
other, history written through one is read through the other, and a token revoked through one
is refused by the other. Needs ``PARLEY_TEST_REDIS_URL``; skipped, saying so, without it.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import httpx
import psycopg
import pytest

from parley.config import environment_variable_names
from tests.e2e.conftest import PASSWORD, TEST_SECRET

pytestmark = pytest.mark.e2e

START_SECONDS = 180  # two servers starting at once on a busy 2-core machine
DEFAULT_LIMIT = 4  # per user and route, per minute: small enough to spend in a test
GENEROUS = "10000 per minute"  # for the routes keyed by address, which every run shares
# The offline model's reply repeats the question: this one takes a minute at a token a second.
QUESTION = "tell me everything about " + " ".join(f"topic{i}" for i in range(60))


@pytest.fixture(scope="module")
def redis_url() -> str:
    url = os.environ.get("PARLEY_TEST_REDIS_URL")
    if not url:
        pytest.skip("needs a shared Redis: set PARLEY_TEST_REDIS_URL (e.g. redis://127.0.0.1:6379/15)")
    return url


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_until_healthy(base_url: str, server: subprocess.Popen[bytes], deadline: float) -> None:
    while True:
        assert server.poll() is None, f"the server at {base_url} exited during start-up"
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{base_url}/health", timeout=5).status_code == 200:
                return
        assert time.monotonic() < deadline, f"the server at {base_url} did not start in time"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def instances(
    e2e_database_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str]]:
    """Two servers (A, B) sharing the module's migrated database and the Redis; their base URLs."""
    inherited = {k: v for k, v in os.environ.items() if k.upper() not in environment_variable_names()}
    servers: list[tuple[str, subprocess.Popen[bytes]]] = []
    try:
        for name in ("a", "b"):
            folder = tmp_path_factory.mktemp(f"instance-{name}")
            port = _free_port()
            environment = {
                **inherited,
                "APP_ENV": "development",
                "POSTGRES_URL": e2e_database_url,
                "REDIS_URL": redis_url,
                "JWT_SECRET_KEY": TEST_SECRET,
                "DATA_DIR": str(folder / "data"),
                "MIGRATE_ON_START": "false",
                "BCRYPT_ROUNDS": "4",
                "LOG_LEVEL": "WARNING",
                "RATE_LIMIT_ENABLED": "true",
                "RATE_LIMIT_DEFAULT": f"{DEFAULT_LIMIT} per minute",
                "RATE_LIMIT_REGISTER": GENEROUS,
                "RATE_LIMIT_LOGIN": GENEROUS,
                # A revocation counts on the next request everywhere, not within a second.
                "AUTH_SESSION_CACHE_SECONDS": "0",
                # A reply takes seconds per token: a turn stays open while the test looks.
                "OFFLINE_MODEL_TOKEN_DELAY_MS": "1000",
            }
            command = [sys.executable, "-m", "parley.cli", "serve", "--port", str(port)]
            servers.append(
                (f"http://127.0.0.1:{port}", subprocess.Popen(command, env=environment, cwd=folder))
            )
        deadline = time.monotonic() + START_SECONDS
        for base_url, server in servers:
            _wait_until_healthy(base_url, server, deadline)
        (a, _), (b, _) = servers
        yield a, b
    finally:
        for _, server in servers:
            server.terminate()
        for _, server in servers:
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(timeout=30)


def _signed_up(base_url: str) -> dict[str, str]:
    """A new user, registered and logged in through ``base_url``; their Authorization header."""
    email = f"instances-{uuid.uuid4().hex[:10]}@example.com"
    with httpx.Client(base_url=base_url, timeout=60) as client:
        assert (
            client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD}).status_code
            == 201
        )
        login = client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
        assert login.status_code == 200, login.text
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


def test_a_rate_limit_spent_on_one_instance_is_spent_on_the_other(instances: tuple[str, str]) -> None:
    a, b = instances
    headers = _signed_up(a)

    for _ in range(DEFAULT_LIMIT):
        assert httpx.get(f"{a}/api/v1/users/me", headers=headers, timeout=60).status_code == 200
    refused = httpx.get(f"{b}/api/v1/users/me", headers=headers, timeout=60)  # B's first request

    assert refused.status_code == 429, refused.text
    assert refused.json()["detail"] == f"Rate limit exceeded: {DEFAULT_LIMIT} per 1 minute"
    assert int(refused.headers["Retry-After"]) > 0


def _assistant_reply_status(database_url: str, session_id: str) -> str | None:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT status FROM messages WHERE role = 'assistant' AND conversation_id = %s",
            (uuid.UUID(session_id),),
        ).fetchone()
    return None if row is None else str(row[0])


def test_a_turn_on_one_instance_claims_the_session_on_the_other_and_its_history_is_shared(
    instances: tuple[str, str], e2e_database_url: str
) -> None:
    a, b = instances
    headers = _signed_up(a)
    created = httpx.post(f"{a}/api/v1/chat/sessions", headers=headers, json={"name": "two"}, timeout=60)
    session_id = created.json()["id"]
    messages = f"/api/v1/chat/sessions/{session_id}/messages"

    with httpx.stream(
        "POST", f"{a}{messages}/stream", headers=headers, json={"content": QUESTION}, timeout=120
    ) as stream:
        assert stream.status_code == 200
        # Up to the first token: the turn is running on A (one token a second, many to go).
        # One iterator, kept: a line iterator dropped part-way closes the connection, and with
        # it the turn.
        lines = stream.iter_lines()
        assert "event: token" in iter(lambda: next(lines), "event: done")
        on_b = httpx.post(f"{b}{messages}", headers=headers, json={"content": "me too"}, timeout=60)
        still_streaming = next(lines)
    # Leaving the stream ends the turn on A; its reply is stored as incomplete.

    assert on_b.status_code == 409, on_b.text
    assert still_streaming.startswith("data: ")  # A's turn was still going after B's answer
    assert on_b.json() == {"detail": "A reply is already being generated for this session"}
    deadline = time.monotonic() + 60
    while _assistant_reply_status(e2e_database_url, session_id) != "incomplete":
        assert time.monotonic() < deadline, "the abandoned turn was never stored"
        time.sleep(0.1)
    history = httpx.get(f"{b}{messages}", headers=headers, timeout=60)
    assert history.status_code == 200, history.text
    rows = [
        (m["role"], m["content"] if m["role"] == "user" else m["status"]) for m in history.json()["items"]
    ]
    assert rows == [("user", QUESTION), ("assistant", "incomplete")]


def test_a_token_revoked_through_one_instance_is_refused_by_the_other(instances: tuple[str, str]) -> None:
    a, b = instances
    headers = _signed_up(a)
    assert httpx.get(f"{b}/api/v1/users/me", headers=headers, timeout=60).status_code == 200

    assert httpx.post(f"{a}/api/v1/auth/logout", headers=headers, timeout=60).status_code == 204
    refused = httpx.get(f"{b}/api/v1/users/me", headers=headers, timeout=60)

    assert refused.status_code == 401, refused.text
