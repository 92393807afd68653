"""Rate limits on a real Redis: shared by app instances, and served through an outage.

Most tests build small apps on the HTTP adapter alone (a limited router, the error table,
``rate_limit_gate`` on an ``HttpEdge``) counting in the storage adapter's Redis or memory, each with
its own key prefix so runs never collide; one builds two full apps with ``create_app`` to show that
``REDIS_URL`` reaches the limiter. Per-account
budgets (``enforce_account_limit``, what log in uses) go through the same storage path.
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from ipaddress import IPv6Address
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Request
from prometheus_client import CollectorRegistry
from tests.fakes.tcp_proxy import CuttableProxy

from parley.adapters.inbound.http.edge import HttpEdge, Services, StreamTiming, attach_edge
from parley.adapters.inbound.http.errors import install_error_handlers
from parley.adapters.inbound.http.metrics import HttpMetrics
from parley.adapters.inbound.http.rate_limits import (
    RATE_LIMITED,
    AccountLimit,
    RateLimitConfig,
    enforce_account_limit,
    rate_limit_gate,
)
from parley.adapters.outbound.redis import make_rate_limit_storage
from parley.config import Settings
from parley.main import create_app

pytestmark = pytest.mark.integration

PING = "/ping"
ATTEMPT = "/accounts/{account}/attempts"
AppClient = Callable[..., AbstractAsyncContextManager[tuple[httpx.AsyncClient, CollectorRegistry]]]


def small_app(config: RateLimitConfig, storage_url: str | None, registry: CollectorRegistry) -> FastAPI:
    router = APIRouter(dependencies=[RATE_LIMITED])

    @router.get(PING)
    async def ping() -> dict[str, str]:
        return {"pong": "ok"}

    @router.post(ATTEMPT)
    async def attempt(request: Request, account: str) -> dict[str, str]:
        await enforce_account_limit(request, AccountLimit.LOGIN, account)
        return {"attempt": "counted"}

    app = FastAPI()
    install_error_handlers(app)
    app.include_router(router)
    edge = HttpEdge(
        services=cast(Services, None),  # these routes call no use case and check no token
        metrics=HttpMetrics.register(registry),
        streams=StreamTiming(ping_seconds=15, drain_seconds=20),
        environment="test",
        rate_limits=rate_limit_gate(config, lambda: make_rate_limit_storage(storage_url), registry=registry),
    )
    attach_edge(app, edge)
    return app


@pytest.fixture
def app_client() -> AppClient:
    """``async with app_client(storage_url=..., key_prefix=...) as (client, registry)``: a small app
    counting in Redis at ``storage_url`` (None: memory), other keywords ``RateLimitConfig``'s
    (its client's address: ``address=...``, else httpx's default)."""

    @asynccontextmanager
    async def open_client(
        *, address: str = "127.0.0.1", storage_url: str | None = None, **config: Any
    ) -> AsyncIterator[tuple[httpx.AsyncClient, CollectorRegistry]]:
        registry = CollectorRegistry()
        config = {"default": "3 per minute", "login_account": "2 per minute"} | config
        app = small_app(RateLimitConfig(**config), storage_url, registry)
        transport = httpx.ASGITransport(app=app, client=(address, 40000), raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client, registry

    return open_client


@pytest.fixture
def key_prefix() -> str:
    return f"parley-test-{uuid.uuid4().hex}"


def storage_errors(registry: CollectorRegistry) -> float:
    return registry.get_sample_value("parley_rate_limit_storage_errors_total") or 0.0


async def statuses(client: httpx.AsyncClient, count: int) -> list[int]:
    return [(await client.get(PING)).status_code for _ in range(count)]


async def test_two_instances_share_one_budget(app_client: AppClient, redis_url: str, key_prefix: str) -> None:
    async with (
        app_client(storage_url=redis_url, key_prefix=key_prefix) as (first, _),
        app_client(storage_url=redis_url, key_prefix=key_prefix) as (second, _),
    ):
        early = await statuses(first, 2) + await statuses(second, 1)
        refused_second = await second.get(PING)
        refused_first = await first.get(PING)

    assert early == [200, 200, 200]
    assert refused_second.status_code == refused_first.status_code == 429
    assert refused_first.json() == {"detail": "Rate limit exceeded: 3 per 1 minute"}
    assert 1 <= int(refused_first.headers["Retry-After"]) <= 60


async def test_instances_with_memory_storage_do_not_share(app_client: AppClient, key_prefix: str) -> None:
    async with (
        app_client(key_prefix=key_prefix) as (first, _),
        app_client(key_prefix=key_prefix) as (second, _),
    ):
        answers = await statuses(first, 3) + await statuses(second, 3)

    assert answers == [200] * 6


async def test_an_unreachable_redis_never_fails_a_request(app_client: AppClient, key_prefix: str) -> None:
    async with app_client(storage_url=f"redis://127.0.0.1:{closed_port()}/0", key_prefix=key_prefix) as (
        client,
        registry,
    ):
        answers = await statuses(client, 4)

    # Served, and still limited: the instance's memory keeps the same limits meanwhile.
    assert answers == [200, 200, 200, 429]
    assert storage_errors(registry) == 1  # then the shared storage is left alone for a while


async def test_limits_are_shared_again_once_redis_is_back(
    app_client: AppClient, redis_url: str, key_prefix: str
) -> None:
    proxy = CuttableProxy(redis_url)
    await proxy.start()
    through_proxy = urlunsplit(urlsplit(redis_url)._replace(netloc=f"127.0.0.1:{proxy.port}"))
    config = {"storage_url": through_proxy, "key_prefix": key_prefix, "storage_retry_seconds": 0.2}
    try:
        async with app_client(**config) as (client, registry):
            before = await statuses(client, 4)  # the shared budget is spent
            await proxy.cut()
            during = await statuses(client, 1)  # served, counted in memory
            errors_during = storage_errors(registry)
            await proxy.restore()
            await asyncio.sleep(0.3)  # past storage_retry_seconds
            after = await statuses(client, 1)  # the shared budget again: still spent
    finally:
        await proxy.cut()

    assert before == [200, 200, 200, 429]
    assert during == [200]
    assert errors_during == 1
    assert after == [429]


async def test_instances_share_an_accounts_budget_across_addresses(
    app_client: AppClient, redis_url: str, key_prefix: str
) -> None:
    config = {"storage_url": redis_url, "key_prefix": key_prefix, "default": "10 per minute"}
    async with (
        app_client(address="203.0.113.1", **config) as (first, _),
        app_client(address="198.51.100.2", **config) as (second, registry),
    ):
        early = [
            (await client.post(f"/accounts/{account}/attempts")).status_code
            for account in ("ada", "bob")
            for client in (first, second)
        ]
        refused = await second.post("/accounts/ada/attempts")

    assert early == [200, 200, 200, 200]
    assert refused.status_code == 429
    assert refused.json() == {"detail": "Rate limit exceeded: 2 per 1 minute"}  # the account's limit
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert registry.get_sample_value("parley_rate_limit_rejections_total", {"endpoint": ATTEMPT}) == 1


async def test_an_unreachable_redis_still_limits_accounts_in_memory(
    app_client: AppClient, key_prefix: str
) -> None:
    unreachable = f"redis://127.0.0.1:{closed_port()}/0"
    async with app_client(storage_url=unreachable, key_prefix=key_prefix, default="10 per minute") as (
        client,
        registry,
    ):
        answers = [
            await client.post(f"/accounts/{account}/attempts") for account in ("ada", "ada", "bob", "ada")
        ]

    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[3].json() == {"detail": "Rate limit exceeded: 2 per 1 minute"}
    assert storage_errors(registry) == 1


async def test_redis_url_setting_makes_full_apps_share_a_budget(
    redis_url: str, migrated_database_url: str, tmp_path: Path
) -> None:
    settings = Settings(
        _env_file=None,
        data_dir=tmp_path,
        db={"url": migrated_database_url, "migrate_on_start": False},
        auth={"jwt_secret_key": "integration-test-secret-" + "x" * 40},
        limits={"redis_url": redis_url, "default": "2 per minute"},
    )
    # main.py has no key prefix setting: an address of this test's own keeps its keys apart.
    address = str(IPv6Address(uuid.uuid4().int))
    async with AsyncExitStack() as stack:
        clients = []
        for _ in range(2):
            app = create_app(settings)
            await stack.enter_async_context(app.router.lifespan_context(app))
            transport = httpx.ASGITransport(app=app, client=(address, 5000), raise_app_exceptions=False)
            clients.append(await stack.enter_async_context(httpx.AsyncClient(transport=transport)))
        first, second = clients
        answers = [
            (await client.get("http://testserver/api/v1/users/me")).status_code
            for client in (first, second, first)
        ]

    assert answers == [401, 401, 429]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # closed again when the block ends
