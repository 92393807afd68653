"""``GET /metrics``: every family after a realistic session, in one process and across workers."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from parley.adapters.outbound.langgraph.offline_model import OFFLINE_MODEL_NAME
from parley.ports.agent import AgentUnavailable, ModelRetry
from tests.e2e.conftest import PASSWORD, TEST_SECRET, AppFactory, register, signed_up
from tests.fakes.agent import ScriptedChatAgent, ScriptedTurn
from tests.fakes.tcp_proxy import CuttableProxy

pytestmark = pytest.mark.e2e

SESSION_ROUTE = "/api/v1/chat/sessions/{session_id}"
Samples = dict[str, list[tuple[dict[str, str], float]]]


def _samples(exposition: str) -> Samples:
    """Sample name -> [(labels, value)] from a text exposition."""
    samples: Samples = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def _value(samples: Samples, name: str, **labels: str) -> float:
    """The sum over the series of ``name`` whose labels include ``labels`` (0 when none)."""
    return sum(v for found, v in samples.get(name, []) if labels.items() <= found.items())


async def _a_realistic_session(client: httpx.AsyncClient) -> str:
    """Register, log in (and fail once), take a chat turn, miss a session; returns the session id."""
    email = f"metrics-{uuid.uuid4().hex[:8]}@example.com"
    headers = await signed_up(client, email)
    wrong = await client.post("/api/v1/auth/login", json={"email": email, "password": "Wr0ng!Passw0rd"})
    assert wrong.status_code == 401
    created = await client.post("/api/v1/chat/sessions", json={"name": "metrics"}, headers=headers)
    session_id = created.json()["id"]
    turn = await client.post(
        f"/api/v1/chat/sessions/{session_id}/messages", json={"content": "What is 17 * 23?"}, headers=headers
    )
    assert turn.status_code == 200, turn.text
    missing = await client.get(f"/api/v1/chat/sessions/{uuid.uuid4()}", headers=headers)
    assert missing.status_code == 404
    return str(session_id)


async def test_metrics_show_http_auth_llm_pool_and_build_families(start_app: AppFactory) -> None:
    app, client = await start_app()
    session_id = await _a_realistic_session(client)

    response = await client.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = _samples(response.text)
    http = "parley_http_requests_total"
    assert _value(samples, http, method="POST", route="/api/v1/auth/register", status="201") == 1
    assert _value(samples, http, method="POST", route="/api/v1/auth/login", status="401") == 1
    assert _value(samples, http, method="GET", route=SESSION_ROUTE, status="404") == 1
    assert session_id not in response.text  # templates, never raw paths with ids
    assert _value(samples, "parley_http_request_duration_seconds_count", route=SESSION_ROUTE) == 1
    assert samples["parley_http_requests_in_flight"][0][1] == 1  # the scrape itself
    auth = "parley_auth_attempts_total"
    assert _value(samples, auth, action="register", outcome="success") == 1
    assert _value(samples, auth, action="login", outcome="success") == 1
    assert _value(samples, auth, action="login", outcome="invalid_credentials") == 1
    assert _value(samples, "parley_llm_calls_total", model=OFFLINE_MODEL_NAME) >= 1
    assert _value(samples, "parley_llm_call_duration_seconds_count", model=OFFLINE_MODEL_NAME) >= 1
    assert _value(samples, "parley_llm_time_to_first_token_seconds_count", model=OFFLINE_MODEL_NAME) >= 1
    assert _value(samples, "parley_llm_tokens_total", model=OFFLINE_MODEL_NAME, kind="completion") > 0
    assert _value(samples, "parley_chat_turns_total", status="complete") == 1
    assert samples["parley_llm_active_streams"][0][1] == 0
    assert _value(samples, "parley_db_pool_size") == 10
    assert "parley_db_pool_checked_out" in samples
    assert [labels["version"] for labels, _ in samples["parley_build_info"]] == [app.version]


async def test_db_up_follows_the_database_and_the_pool_reports_its_ceiling(
    start_app: AppFactory, e2e_database_url: str
) -> None:
    proxy = CuttableProxy(e2e_database_url)
    await proxy.start()
    try:
        _, client = await start_app(db={"url": proxy.url, "pool_size": 3, "max_overflow": 2})
        up = _samples((await client.get("/metrics")).text)
        await proxy.cut()  # refused and dropped, as an outage looks from the app
        down = (await client.get("/metrics")).text
        await proxy.restore()
        back = _samples((await client.get("/metrics")).text)
    finally:
        await proxy.cut()

    assert _value(up, "parley_db_up") == 1
    assert _value(_samples(down), "parley_db_up") == 0  # and the scrape itself still answered
    assert _value(back, "parley_db_up") == 1
    assert (_value(up, "parley_db_pool_size"), _value(up, "parley_db_pool_max_overflow")) == (3, 2)


async def test_retries_and_errors_appear_labelled_by_the_failing_model(start_app: AppFactory) -> None:
    retry = ModelRetry(attempt=1, reason="rate_limited", model="flaky-model")
    agent = ScriptedChatAgent(
        [ScriptedTurn.failing(AgentUnavailable("down", model="flaky-model"), events=[retry])]
    )
    _, client = await start_app(overrides={"agent": agent})
    headers = await signed_up(client, f"flaky-{uuid.uuid4().hex[:8]}@example.com")
    session_id = (await client.post("/api/v1/chat/sessions", json={}, headers=headers)).json()["id"]
    failed = await client.post(
        f"/api/v1/chat/sessions/{session_id}/messages", json={"content": "hello"}, headers=headers
    )
    assert failed.status_code == 502

    samples = _samples((await client.get("/metrics")).text)

    assert _value(samples, "parley_llm_retries_total", model="flaky-model", reason="rate_limited") == 1
    assert _value(samples, "parley_llm_errors_total", model="flaky-model", kind="AgentUnavailable") == 1
    assert _value(samples, "parley_chat_turns_total", status="failed") == 1


async def test_metrics_need_no_auth_and_stay_out_of_the_openapi_schema(start_app: AppFactory) -> None:
    _, client = await start_app()

    scrape = await client.get("/metrics", headers={"Accept": "application/openmetrics-text"})
    schema = (await client.get("/openapi.json")).json()

    assert scrape.status_code == 200
    assert scrape.headers["content-type"].startswith("application/openmetrics-text")
    assert scrape.text.rstrip().endswith("# EOF")
    assert "/metrics" not in schema["paths"]


async def test_each_app_counts_only_its_own_requests(start_app: AppFactory) -> None:
    _, first = await start_app()
    _, second = await start_app()
    await register(first, f"only-first-{uuid.uuid4().hex[:8]}@example.com")

    samples = _samples((await second.get("/metrics")).text)

    assert _value(samples, "parley_auth_attempts_total", action="register") == 0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_until_serving(
    base_url: str, server: subprocess.Popen[bytes], shared_dir: Path, workers: int, timeout: float = 120.0
) -> int:
    """Poll ``/health`` until every worker has started (each writes its live gauges to
    ``shared_dir`` when its app is built); returns how many polls got a 200 (those count too)."""
    deadline, answered = time.monotonic() + timeout, 0
    while time.monotonic() < deadline:
        assert server.poll() is None, "the server exited during start-up"
        with contextlib.suppress(httpx.TransportError):
            answered += httpx.get(f"{base_url}/health", timeout=2).status_code == 200
        # ">=": under load uvicorn may replace a worker it found unresponsive.
        if answered and len(_live_gauge_pids(shared_dir)) >= workers:
            return answered
        time.sleep(0.3)
    raise AssertionError("the server did not start all its workers in time")


def _live_gauge_pids(shared_dir: Path) -> set[str]:
    return {m.group(1) for f in shared_dir.iterdir() if (m := re.match(r"gauge_livesum_(\d+)\.db$", f.name))}


def test_several_workers_report_one_merged_set_of_metrics(e2e_database_url: str, tmp_path: Path) -> None:
    shared_dir = tmp_path / "prometheus"
    shared_dir.mkdir()
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(shared_dir),
        "APP_ENV": "development",
        "POSTGRES_URL": e2e_database_url,
        "JWT_SECRET_KEY": TEST_SECRET,
        "DATA_DIR": str(tmp_path / "data"),
        "MIGRATE_ON_START": "false",
        "RATE_LIMIT_ENABLED": "false",
        "LOG_LEVEL": "WARNING",
    }
    # Two workers sharing one directory: the set-up the README documents.
    command = [sys.executable, "-m", "parley.cli", "serve", "--port", str(port), "--workers", "2"]
    server = subprocess.Popen(command, env=env, cwd=tmp_path)  # cwd: no stray .env is read
    try:
        health_calls = _wait_until_serving(base_url, server, shared_dir, workers=2)
        for _ in range(20):  # fresh connections, so both workers can get some
            assert httpx.get(f"{base_url}/health", timeout=5).status_code == 200
        email = f"workers-{uuid.uuid4().hex[:8]}@example.com"
        payload = {"email": email, "password": PASSWORD}
        assert httpx.post(f"{base_url}/api/v1/auth/register", json=payload, timeout=10).status_code == 201

        samples = _samples(httpx.get(f"{base_url}/metrics", timeout=5).text)

        health = [
            labels for labels, _ in samples["parley_http_requests_total"] if labels["route"] == "/health"
        ]
        assert len(health) == 1  # merged across workers, not one series per process
        assert _value(samples, "parley_http_requests_total", route="/health") == health_calls + 20
        assert _value(samples, "parley_auth_attempts_total", action="register", outcome="success") == 1
        assert _value(samples, "parley_http_requests_in_flight") == 1  # the scrape, summed over workers
        assert "parley_build_info" in samples
        assert "parley_db_pool_size" in samples
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)
