"""The HTTP metrics middleware on a tiny app, and the auth audit's pure helpers."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from limits import parse
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from parley.adapters.inbound.http.audit import email_digest, outcome_of
from parley.adapters.inbound.http.metrics import UNMATCHED, HttpMetrics, MetricsMiddleware
from parley.adapters.inbound.http.metrics_endpoint import multiprocess_dir, release_process_gauges
from parley.adapters.inbound.http.rate_limits import RateLimited
from parley.domain.errors import EmailAlreadyRegistered, InvalidCredentials, NotAuthenticated
from parley.ports.persistence import StorageUnavailable

pytestmark = pytest.mark.unit

STREAM_PAUSE = 0.2


def _app(registry: CollectorRegistry) -> MetricsMiddleware:
    metrics = HttpMetrics.register(registry)

    async def item(request: Request) -> JSONResponse:
        in_flight = registry.get_sample_value("parley_http_requests_in_flight")
        return JSONResponse({"id": request.path_params["item_id"], "in_flight": in_flight})

    async def stream(_: Request) -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            yield b"first"
            await asyncio.sleep(STREAM_PAUSE)
            yield b"last"

        return StreamingResponse(chunks())

    async def boom(_: Request) -> JSONResponse:
        raise RuntimeError("bug")

    routes = [Route("/items/{item_id}", item), Route("/stream", stream), Route("/boom", boom)]
    return MetricsMiddleware(Starlette(routes=routes), metrics=metrics)


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
async def client(registry: CollectorRegistry) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=_app(registry), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


def _requests(registry: CollectorRegistry, route: str, status: str, method: str = "GET") -> float | None:
    labels = {"method": method, "route": route, "status": status}
    return registry.get_sample_value("parley_http_requests_total", labels)


async def test_requests_are_labelled_by_route_template_not_raw_path(
    client: httpx.AsyncClient, registry: CollectorRegistry
) -> None:
    await client.get("/items/1")
    await client.get("/items/2")

    assert _requests(registry, "/items/{item_id}", "200") == 2
    assert _requests(registry, "/items/1", "200") is None


async def test_requests_no_route_matched_share_one_label(
    client: httpx.AsyncClient, registry: CollectorRegistry
) -> None:
    await client.get("/nope/1")
    await client.get("/nope/2")

    assert _requests(registry, UNMATCHED, "404") == 2


async def test_a_streamed_response_is_timed_to_its_last_chunk(
    client: httpx.AsyncClient, registry: CollectorRegistry
) -> None:
    response = await client.get("/stream")

    assert response.text == "firstlast"
    labels = {"method": "GET", "route": "/stream", "status": "200"}
    seconds = registry.get_sample_value("parley_http_request_duration_seconds_sum", labels)
    assert seconds is not None
    assert seconds >= STREAM_PAUSE


async def test_in_flight_counts_the_request_being_served_and_returns_to_zero(
    client: httpx.AsyncClient, registry: CollectorRegistry
) -> None:
    response = await client.get("/items/1")

    assert response.json()["in_flight"] == 1
    assert registry.get_sample_value("parley_http_requests_in_flight") == 0


async def test_a_request_that_crashes_is_counted_as_500(
    client: httpx.AsyncClient, registry: CollectorRegistry
) -> None:
    response = await client.get("/boom")

    assert response.status_code == 500
    assert _requests(registry, "/boom", "500") == 1
    assert registry.get_sample_value("parley_http_requests_in_flight") == 0


def test_an_email_digest_is_stable_under_case_and_spaces_and_hides_the_address() -> None:
    digest = email_digest("Ada@Example.com ")

    assert digest == email_digest("ada@example.com")
    assert digest != email_digest("bob@example.com")
    assert "ada" not in digest
    assert len(digest) == 16


@pytest.mark.parametrize(
    "spelling", ["\uff21\uff24\uff21@example.com", " \uff41da@EXAMPLE.com\u3000", "\u1d43da@exampl\u212f.com"]
)
def test_every_spelling_the_domain_takes_for_an_address_has_its_digest(spelling: str) -> None:
    assert email_digest(spelling) == email_digest("ada@example.com")


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (InvalidCredentials(), "invalid_credentials"),
        (EmailAlreadyRegistered(), "email_taken"),
        (NotAuthenticated(), "invalid_token"),
        (StorageUnavailable(), "unavailable"),
        (RateLimited(parse("10 per minute"), retry_after=30), "rate_limited"),
        (RuntimeError("bug"), "error"),
    ],
)
def test_a_failed_attempt_is_named_by_its_error(error: Exception, outcome: str) -> None:
    assert outcome_of(error) == outcome


def test_a_stopping_worker_drops_its_live_gauges_from_the_shared_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    mine, other = tmp_path / f"gauge_livesum_{os.getpid()}.db", tmp_path / "gauge_livesum_1.db"
    counters = tmp_path / f"counter_{os.getpid()}.db"
    for path in (mine, other, counters):
        path.write_bytes(b"")

    release_process_gauges()

    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([other.name, counters.name])


def test_outside_multiprocess_mode_stopping_touches_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    monkeypatch.delenv("prometheus_multiproc_dir", raising=False)

    release_process_gauges()  # would raise on a missing directory if it tried

    assert multiprocess_dir() is None
