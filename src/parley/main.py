"""The ASGI application: ``create_app(settings=None)`` wires the container to FastAPI."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from asgi_correlation_id import CorrelationIdMiddleware
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from parley import __version__
from parley.adapters.inbound.http import routes_auth, routes_chat, routes_health, routes_users
from parley.adapters.inbound.http.api_docs import install_api_docs
from parley.adapters.inbound.http.edge import HttpEdge, StreamTiming, attach_edge
from parley.adapters.inbound.http.errors import install_error_handlers
from parley.adapters.inbound.http.json_response import NewlineJSONResponse
from parley.adapters.inbound.http.metrics import HttpMetrics, MetricsMiddleware
from parley.adapters.inbound.http.metrics_endpoint import install_metrics, release_process_gauges
from parley.adapters.inbound.http.middleware import (
    BodyLimitMiddleware,
    BodyTimeoutMiddleware,
    UnhandledErrorMiddleware,
    is_sane_request_id,
)
from parley.adapters.inbound.http.rate_limits import RateLimitConfig, rate_limit_gate
from parley.adapters.inbound.http.web_client import install_web_client
from parley.bootstrap import database_check, database_pool_reader, running_resources
from parley.config import RateLimitSettings, Settings, load_settings
from parley.container import Container
from parley.gc_tuning import tune_for_serving
from parley.log_setup import configure_logging

API_DESCRIPTION = """
Parley is a chat-agent backend: register, log in, open chat sessions and talk to a
LangGraph agent whose replies can stream back over Server-Sent Events.

Use **Authorize** with your e-mail as *username* to try the authenticated routes.
"""


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    async with running_resources(app.state.container):
        if app.state.serving:
            tune_for_serving()  # everything built at start-up exists by now
        yield
    release_process_gauges()


def create_app(settings: Settings | None = None, *, serving: bool = False) -> FastAPI:
    """Build the app around a fresh container (tests override its providers before start-up).

    ``serving=True`` (``parley serve``) also tunes this process's garbage collector once
    the app has started (:mod:`parley.gc_tuning`); a test process keeps the defaults.
    """
    settings = settings or load_settings()
    container = Container(settings=settings)
    app = FastAPI(
        title=settings.app_name,
        version=__version__,
        description=API_DESCRIPTION,
        lifespan=_lifespan,
        docs_url=None,  # FastAPI's pages load from a CDN; install_api_docs serves them offline
        redoc_url=None,
        default_response_class=NewlineJSONResponse,
    )
    app.state.container = container  # the composition root's own: the lifespan and tests use it
    app.state.serving = serving
    install_error_handlers(app)
    registry = container.metrics_registry()
    http_metrics = HttpMetrics.register(registry)
    install_metrics(
        app,
        registry=registry,
        read_pool=database_pool_reader(container),
        check_database=database_check(container),
        version=__version__,
    )
    attach_edge(
        app,
        HttpEdge(
            services=container,
            metrics=http_metrics,
            streams=StreamTiming(
                ping_seconds=settings.http.sse_ping_seconds,
                drain_seconds=settings.http.shutdown_grace_seconds,
            ),
            environment=settings.app_env.value,
            rate_limits=rate_limit_gate(
                _rate_limit_config(settings.limits), container.rate_limit_storage, registry=registry
            ),
        ),
    )
    for router in (routes_health.router, routes_auth.router, routes_users.router, routes_chat.router):
        app.include_router(router)
    install_api_docs(app)
    install_web_client(app)  # the built-in web chat at /
    _add_middleware(app, settings, http_metrics)
    return app


def _rate_limit_config(limits: RateLimitSettings) -> RateLimitConfig:
    """The limits group, but its storage (``limits.redis_url``: the container's ``rate_limit_storage``)."""
    return RateLimitConfig(
        enabled=limits.enabled,
        default=limits.default,
        chat=limits.chat,
        chat_stream=limits.chat_stream,
        register=limits.registration,
        login=limits.login,
        login_account=limits.login_account,
        trusted_proxies=limits.trusted_proxies,
    )


def create_served_app() -> FastAPI:
    """The factory ``parley serve`` hands to uvicorn. It sets up logging too: worker and
    reload processes start fresh and never ran the command's own set-up."""
    settings = load_settings()
    configure_logging(level=settings.observability.log_level, json_lines=settings.json_logs)
    return create_app(settings, serving=True)


def _add_middleware(app: FastAPI, settings: Settings, http_metrics: HttpMetrics) -> None:
    # Starlette wraps in reverse order: the last added runs first (outermost).
    app.add_middleware(UnhandledErrorMiddleware)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.http.max_body_bytes)
    # Outside the size limit, which counts what this one lets through; both answer through
    # CORS and metrics, so browsers can read their 413/408 and both are counted.
    app.add_middleware(BodyTimeoutMiddleware, timeout_seconds=settings.http.body_timeout_seconds)
    if settings.http.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.http.cors_origins,
            # Browsers refuse credentials with a wildcard origin; development may use "*".
            allow_credentials="*" not in settings.http.cors_origins,
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=["X-Request-ID", "Retry-After"],
        )
    # Inside the request id (its lines carry it), outside the rest (413s and 500s count).
    app.add_middleware(MetricsMiddleware, metrics=http_metrics)
    app.add_middleware(
        CorrelationIdMiddleware,
        header_name="X-Request-ID",
        validator=is_sane_request_id,
    )
