"""HTTP metrics and the access log, from one pure-ASGI middleware.

Families (registered on the app's registry by :meth:`HttpMetrics.register`):

- ``parley_http_requests_total{method, route, status}`` and
  ``parley_http_request_duration_seconds{method, route, status}``: ``route`` is the
  route *template* (``/api/v1/chat/sessions/{session_id}``), never the raw path, so ids
  cannot explode the label space; requests no route matched get ``unmatched``;
- ``parley_http_requests_in_flight`` (``livesum`` across worker processes);
- ``parley_auth_attempts_total{action, outcome}``, counted by the auth audit.

Pure ASGI (no ``BaseHTTPMiddleware``) so streamed responses pass through untouched
and are measured to their last byte: the app call returns only when the stream ends.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from loguru import logger
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from parley.log_setup import current_user_id

UNMATCHED = "unmatched"
CLIENT_CLOSED_REQUEST = 499  # nginx's code: the client left before any response started
# Up to minutes: a streamed chat turn lasts as long as the model talks.
HTTP_SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


@dataclass(frozen=True, slots=True)
class HttpMetrics:
    """The HTTP-side metric families of one app."""

    requests: Counter
    duration: Histogram
    in_flight: Gauge
    auth_attempts: Counter

    @classmethod
    def register(cls, registry: CollectorRegistry) -> HttpMetrics:
        """Create the families on ``registry`` (once per registry: names must be unique)."""
        labels = ["method", "route", "status"]
        return cls(
            requests=Counter("parley_http_requests", "HTTP requests answered", labels, registry=registry),
            duration=Histogram(
                "parley_http_request_duration_seconds",
                "Time from request to the end of the response (streams included)",
                labels,
                buckets=HTTP_SECONDS_BUCKETS,
                registry=registry,
            ),
            in_flight=Gauge(
                "parley_http_requests_in_flight",
                "HTTP requests being served",
                registry=registry,
                multiprocess_mode="livesum",
            ),
            auth_attempts=Counter(
                "parley_auth_attempts",
                "Authentication attempts by action (register|login|refresh|logout|bearer) and outcome",
                ["action", "outcome"],
                registry=registry,
            ),
        )


def route_template(scope: Scope) -> str:
    """The template of the route that handled the request, or :data:`UNMATCHED`."""
    route = scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    return template if isinstance(template, str) and template else UNMATCHED


class MetricsMiddleware:
    """Count and time every HTTP request and write one access-log line for it.

    Must sit inside the request-id middleware (so the line carries the request id)
    and outside everything else (so 413s, 408s and last-resort 500s are counted too).
    Each request starts with no user id in the log context; routes set it once the
    caller is known, and the access line (written last) carries it.

    The status is the one the response started with, except that a client gone before
    any response started is 499, as nginx logs it: the server told the app so
    (``http.disconnect``), or cancelled it. Whatever the app answered after that went
    nowhere, and no answer at all is then not a 500.
    """

    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        user_token = current_user_id.set(None)
        started = time.perf_counter()
        status: int | None = None
        left_unanswered = False

        async def observing_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        async def observing_receive() -> Message:
            nonlocal left_unanswered
            message = await receive()
            if message["type"] == "http.disconnect" and status is None:
                left_unanswered = True
            return message

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, observing_receive, observing_send)
        except asyncio.CancelledError:
            left_unanswered = left_unanswered or status is None
            raise
        finally:
            self.metrics.in_flight.dec()
            if left_unanswered:
                status = CLIENT_CLOSED_REQUEST
            # No response started and the client still there: the app raised, the server answers 500.
            self._record(scope, status or 500, time.perf_counter() - started)
            current_user_id.reset(user_token)

    def _record(self, scope: Scope, status: int, seconds: float) -> None:
        method, route = str(scope.get("method", "")), route_template(scope)
        labels = (method, route, str(status))
        self.metrics.requests.labels(*labels).inc()
        self.metrics.duration.labels(*labels).observe(seconds)
        client = scope.get("client")
        # The path without its query string: a query could carry something secret.
        logger.bind(
            method=method,
            route=route,
            path=scope.get("path", ""),
            status=status,
            duration_ms=round(seconds * 1000, 1),
            client=client[0] if client else None,
        ).info("{} {} {} {:.1f}ms", method, route, status, seconds * 1000)
