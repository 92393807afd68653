"""End-to-end fixtures: the real app (``create_app``) on a real, migrated PostgreSQL,
driven through httpx's ASGI transport, lifespan included."""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from loguru import logger

from parley.adapters.outbound.postgres.migrate import upgrade_to_head
from parley.config import Settings
from parley.log_setup import configure_logging
from parley.main import create_app

PASSWORD = "Str0ng!Passw0rd"
TEST_SECRET = "e2e-test-secret-" + "x" * 40

AppFactory = Callable[..., Awaitable[tuple[FastAPI, httpx.AsyncClient]]]
Capture = Callable[..., io.StringIO]


@pytest.fixture(scope="module")
def e2e_database_url(create_database: Callable[[], str]) -> str:
    url = create_database()
    upgrade_to_head(url)
    return url


def make_settings(database_url: str, tmp_path: Path, **overrides: Any) -> Settings:
    """Settings for a test app; ``overrides`` are grouped like the settings (``llm={"model": "x"}``)
    and merged into the test defaults group by group."""
    values: dict[str, Any] = {
        "app_env": "development",
        "data_dir": tmp_path,
        "db": {"url": database_url, "migrate_on_start": False},
        "auth": {"jwt_secret_key": TEST_SECRET, "bcrypt_rounds": 4},
        "limits": {"enabled": False},
        "llm": {"retry_backoff_seconds": 0.0},
        # Off unless a test turns it on (tests/e2e/test_chat_titles.py): a title is one more model
        # request, which would take a reply scripted on a fake model server for something else.
        "chat_auto_title": False,
        # Off unless a test turns it on (tests/e2e/test_memory_api.py), for the same reason: learning
        # from a turn is one more model request.
        # Learnt at once, not after the conversation's pause: tests wait for it (UserMemory.idle).
        "memory": {"enabled": False, "learn_delay_seconds": 0},
    }
    for name, value in overrides.items():
        base = values.get(name)
        values[name] = base | value if isinstance(base, dict) and isinstance(value, dict) else value
    return Settings(_env_file=None, **values)


@pytest.fixture
async def start_app(e2e_database_url: str, tmp_path: Path) -> AsyncIterator[AppFactory]:
    """Factory: ``app, client = await start_app(**settings_overrides, overrides={provider: obj})``.

    Providers are overridden *before* the lifespan starts, as ARCHITECTURE.md asks.
    Everything started is shut down at the end of the test.
    """
    from dependency_injector import providers

    async with AsyncExitStack() as stack:

        async def start(
            *, overrides: dict[str, Any] | None = None, **settings_overrides: Any
        ) -> tuple[FastAPI, httpx.AsyncClient]:
            app = create_app(make_settings(e2e_database_url, tmp_path, **settings_overrides))
            for name, value in (overrides or {}).items():
                getattr(app.state.container, name).override(providers.Object(value))
            await stack.enter_async_context(app.router.lifespan_context(app))
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            client = await stack.enter_async_context(
                httpx.AsyncClient(transport=transport, base_url="http://testserver")
            )
            return app, client

        yield start


@pytest.fixture
async def client(start_app: AppFactory) -> httpx.AsyncClient:
    _, http = await start_app()
    return http


async def register(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> dict[str, Any]:
    response = await client.post("/api/v1/auth/register", json={"email": email, "password": password})
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def log_in(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> dict[str, Any]:
    response = await client.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def signed_up(client: httpx.AsyncClient, email: str) -> dict[str, str]:
    """Register + log in; returns the Authorization header."""
    await register(client, email)
    tokens = await log_in(client, email)
    return {"Authorization": f"Bearer {tokens['access_token']}"}


def _to_current_stderr(message: str) -> None:
    sys.stderr.write(message)  # whatever stderr is by then (pytest swaps it per test)


@pytest.fixture
def capture_logs() -> Iterator[Capture]:
    """``capture_logs(json_lines=...)`` -> the buffer all log output goes to from now on."""
    saved = {
        name: (lg.handlers[:], lg.propagate, lg.level)
        for name, lg in logging.root.manager.loggerDict.items()
        if isinstance(lg, logging.Logger)
    }
    root = (logging.root.handlers[:], logging.root.level)

    def capture(*, json_lines: bool) -> io.StringIO:
        buffer = io.StringIO()
        configure_logging(level="DEBUG", json_lines=json_lines, stream=buffer)
        return buffer

    yield capture
    logger.remove()
    logger.add(_to_current_stderr)
    logging.root.handlers = root[0]
    logging.root.setLevel(root[1])  # setLevel, not .level: it clears the enabled-for caches
    for name, std_logger in list(logging.root.manager.loggerDict.items()):
        if isinstance(std_logger, logging.Logger):  # loggers made meanwhile get the defaults
            handlers, propagate, level = saved.get(name, ([], True, logging.NOTSET))
            std_logger.handlers, std_logger.propagate = handlers, propagate
            std_logger.setLevel(level)
