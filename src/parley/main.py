"""The ASGI application: ``create_app(settings=None)`` wires the container to FastAPI."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from asgi_correlation_id import CorrelationIdMiddleware
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from parley import __version__
from parley.adapters.inbound.http import routes_auth, routes_chat, routes_health, routes_users
from parley.adapters.inbound.http.errors import install_error_handlers
from parley.adapters.inbound.http.middleware import (
    BodyLimitMiddleware,
    UnhandledErrorMiddleware,
    is_sane_request_id,
)
from parley.config import Settings, load_settings
from parley.container import Container, running_resources

API_DESCRIPTION = """
Parley is a chat-agent backend: register, log in, open chat sessions and talk to a
LangGraph agent whose replies can stream back over Server-Sent Events.

Use **Authorize** with your e-mail as *username* to try the authenticated routes.
"""


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    async with running_resources(app.state.container):
        yield


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app around a fresh container (tests override its providers before start-up)."""
    settings = settings or load_settings()
    container = Container(settings=settings)
    app = FastAPI(
        title=settings.app_name,
        version=__version__,
        description=API_DESCRIPTION,
        lifespan=_lifespan,
    )
    app.state.container = container
    install_error_handlers(app)
    for router in (routes_health.router, routes_auth.router, routes_users.router, routes_chat.router):
        app.include_router(router)
    _add_middleware(app, settings)
    return app


def _add_middleware(app: FastAPI, settings: Settings) -> None:
    # Starlette wraps in reverse order: the last added runs first (outermost).
    app.add_middleware(UnhandledErrorMiddleware)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials=True,
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=["X-Request-ID", "Retry-After"],
        )
    app.add_middleware(
        CorrelationIdMiddleware,
        header_name="X-Request-ID",
        validator=is_sane_request_id,
    )
