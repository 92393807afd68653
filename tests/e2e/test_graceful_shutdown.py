"""SIGTERM on a real ``parley serve``: replies being streamed are drained, not cut.

A stream that ends within ``SHUTDOWN_GRACE_SECONDS`` ends with its normal ``done``; one that
would take longer is stopped then, its reply stored as ``incomplete``, and ends with an
``error`` event. The offline model is slowed down so a reply takes seconds.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.e2e.conftest import PASSWORD, TEST_SECRET
from tests.e2e.sse_client import parse_events

pytestmark = pytest.mark.e2e


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def serving(database_url: str, tmp_path: Path, **env: str) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``parley serve`` in a process of its own; yields its base URL and the process."""
    port = _free_port()
    environment = {
        **os.environ,
        "APP_ENV": "development",
        "POSTGRES_URL": database_url,
        "JWT_SECRET_KEY": TEST_SECRET,
        "DATA_DIR": str(tmp_path / "data"),
        "MIGRATE_ON_START": "false",
        "RATE_LIMIT_ENABLED": "false",
        "BCRYPT_ROUNDS": "4",
        "LOG_LEVEL": "WARNING",
        **env,
    }
    command = [sys.executable, "-m", "parley.cli", "serve", "--port", str(port)]
    server = subprocess.Popen(command, env=environment, cwd=tmp_path)
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, "the server exited during start-up"
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{base_url}/health", timeout=2).status_code == 200:
                    break
            assert time.monotonic() < deadline, "the server did not start in time"
            time.sleep(0.2)
        yield base_url, server
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(timeout=30)


def open_session(base_url: str) -> tuple[dict[str, str], str]:
    email = f"drain-{uuid.uuid4().hex[:8]}@example.com"
    with httpx.Client(base_url=base_url, timeout=30) as client:
        client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD}).raise_for_status()
        login = client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        session = client.post("/api/v1/chat/sessions", headers=headers, json={"name": "drain"})
        return headers, str(session.json()["id"])


def stream_and_stop_the_server(
    base_url: str, server: subprocess.Popen[bytes], content: str
) -> tuple[list[tuple[str, dict[str, Any]]], float]:
    """Stream a reply; send SIGTERM once its first token arrived; read the stream to its end.

    Returns the events and the seconds from SIGTERM to the server's exit.
    """
    headers, session_id = open_session(base_url)
    lines: list[str] = []
    url = f"{base_url}/api/v1/chat/sessions/{session_id}/messages/stream"
    with httpx.stream("POST", url, headers=headers, json={"content": content}, timeout=60) as response:
        for line in response.iter_lines():
            lines.append(line)
            if line == "event: token" and server.poll() is None and "stopped" not in lines:
                server.send_signal(signal.SIGTERM)
                stopped_at = time.monotonic()
                lines.append("stopped")
    # uvicorn re-raises the signal it caught once it has shut down cleanly.
    assert server.wait(timeout=60) == -signal.SIGTERM
    body = "\n".join(line for line in lines if line != "stopped")
    return parse_events(body + "\n"), time.monotonic() - stopped_at


def stored_replies(database_url: str) -> list[tuple[str, str]]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT status, content FROM messages WHERE role = 'assistant' ORDER BY seq DESC LIMIT 1"
        ).fetchall()
    return [(str(status), str(content)) for status, content in rows]


def test_a_stream_in_flight_at_sigterm_ends_with_done(e2e_database_url: str, tmp_path: Path) -> None:
    # About 15 tokens at 0.1 s: ~1.5 s, well within the 20 s drain.
    with serving(e2e_database_url, tmp_path, OFFLINE_MODEL_TOKEN_DELAY_MS="100") as (base_url, server):
        events, _ = stream_and_stop_the_server(base_url, server, "a short question")

    names = [name for name, _ in events]
    assert names[0] == "message"
    assert names[-1] == "done"
    assert events[-1][1]["message"]["status"] == "complete"


def test_a_stream_outlasting_the_grace_period_is_stopped_with_an_error_event(
    e2e_database_url: str, tmp_path: Path
) -> None:
    long_question = "tell me everything about " + " ".join(f"topic{i}" for i in range(80))
    with serving(
        e2e_database_url, tmp_path, OFFLINE_MODEL_TOKEN_DELAY_MS="100", SHUTDOWN_GRACE_SECONDS="1"
    ) as (base_url, server):
        events, seconds_to_exit = stream_and_stop_the_server(base_url, server, long_question)

    assert events[-1] == ("error", {"detail": "The server is shutting down"})
    streamed = "".join(data["delta"] for name, data in events if name == "token")
    assert stored_replies(e2e_database_url) == [("incomplete", streamed)]
    assert seconds_to_exit < 1 + 5 + 10  # grace + uvicorn's margin, plus a busy machine's slack
