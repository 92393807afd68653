"""Rate limits: one slowapi ``Limiter`` per app, enforced by a router dependency.

Contract (API.md, "Rate limits"):
- every route of a router declared with ``dependencies=[RATE_LIMITED]`` counts against the
  default limits, or against its own limit when marked with :func:`rate_limit`; each route
  has its own budget. Routes without the dependency (``/health``, ``/metrics``, the docs)
  are never limited;
- who pays (see :mod:`.client_identity`): on a route that requires a bearer token (chat,
  users, log out), the user of a genuine access token (signature checked, no database),
  else the client address; on every other route (register, log in, refresh) the client
  address, whatever ``Authorization`` header is sent;
- a route that learns which account an attempt targets counts it, before doing any work
  for it, against that account's own budget with :func:`enforce_account_limit` (log in:
  :attr:`AccountLimit.LOGIN`, keyed by the hashed, normalised e-mail, whoever sends it);
- a refused request raises :class:`RateLimited`, answered by the error table as 429 with
  ``{"detail": "Rate limit exceeded: 30 per 1 minute"}`` and ``Retry-After`` (seconds), and
  counted in ``parley_rate_limit_rejections_total{endpoint=<route template>}``;
- the storage the limits count in is handed in (the composition root builds it: this
  process's memory, or Redis shared by every instance, ``adapters/outbound/redis``); with a
  shared storage, an unreachable storage never fails a request: the check falls back to this
  instance's memory (same limits), logs a warning, counts
  ``parley_rate_limit_storage_errors_total``, and tries the shared storage again after
  ``storage_retry_seconds``.

Why not slowapi's decorators: they bind one module-level ``Limiter`` at import time, while
``create_app(settings)`` builds apps with different limits and storages in one process.
Why not slowapi's middlewares: they find the route by walking ``app.routes``, which no
longer lists endpoints once FastAPI includes routers lazily, and they only enforce default
limits. A dependency runs after routing, so the route and its template are known, and its
:class:`RateLimited` reaches the app's error handlers like any other error. The check itself
is slowapi's: the call its own decorator makes, a private method, on a strategy over the
storage handed in, which replaces the one slowapi builds from a URI (entry 5 of
``docs/upstream-overrides.md``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

import anyio.to_thread
from fastapi import Depends, Request
from limits import RateLimitItem, parse_many
from limits.errors import StorageError
from limits.storage import MemoryStorage, Storage
from limits.strategies import FixedWindowRateLimiter
from loguru import logger
from prometheus_client import CollectorRegistry, Counter
from slowapi import Limiter
from slowapi.errors import RateLimitExceeded

from parley.adapters.inbound.http.client_identity import ClientIdentity, account_key
from parley.adapters.inbound.http.edge import edge_of

_MARK = "__parley_rate_limit__"
_Endpoint = TypeVar("_Endpoint", bound=Callable[..., Any])


class RouteLimit(StrEnum):
    """The routes with a limit of their own (every other limited route gets the defaults)."""

    CHAT = "chat"
    CHAT_STREAM = "chat_stream"
    REGISTER = "register"
    LOGIN = "login"


class AccountLimit(StrEnum):
    """Budgets per target account, counted by a route once it knows the account
    (:func:`enforce_account_limit`), on top of its route's budget."""

    LOGIN = "login_account"


def rate_limit(route_limit: RouteLimit) -> Callable[[_Endpoint], _Endpoint]:
    """Mark an endpoint as counting against ``route_limit`` instead of the defaults.

    A marker only (the endpoint is returned unchanged): the limit itself is the app's
    configuration. The endpoint needs a ``request`` parameter: slowapi refuses to register
    a limit on a function without one.
    """

    def mark(endpoint: _Endpoint) -> _Endpoint:
        setattr(endpoint, _MARK, route_limit)
        return endpoint

    return mark


class RateLimited(Exception):
    """A rate limit refused the request; ``detail`` and ``headers`` are the 429 answer's."""

    def __init__(self, limit: RateLimitItem, retry_after: int) -> None:
        self.detail = f"Rate limit exceeded: {limit}"
        self.retry_after = retry_after
        self.headers: Mapping[str, str] = {"Retry-After": str(retry_after)}
        super().__init__(self.detail)


@dataclass(frozen=True, slots=True, kw_only=True)
class RateLimitConfig:
    """Plain values for :func:`install_rate_limits`; limits in slowapi syntax, ``;`` between several.

    Raises ``ValueError`` on a limit that does not parse (slowapi would only log it).
    """

    enabled: bool = True
    default: str = "200 per day;50 per hour"
    chat: str = "30 per minute"
    chat_stream: str = "20 per minute"
    register: str = "10 per hour"
    login: str = "20 per minute"
    # Login attempts on one account, from every address together (AccountLimit.LOGIN). 100 a
    # day is NIST SP 800-63B's ceiling on consecutive failed attempts per account (5.2.2): an
    # online guesser gets at most 36,500 guesses a year at any one password, however many
    # addresses or proxies it spreads them over; 10 a minute stops a burst from spending the
    # day at once and is more than a person typing. The price: anyone who knows an address
    # can spend its budget and lock its owner out of *new* logins until the window ends
    # (logins already open keep refreshing); a shorter window trades guesses for a shorter
    # lock-out.
    login_account: str = "10 per minute;100 per day"
    trusted_proxies: Sequence[str] = ()  # IPs or CIDRs whose X-Forwarded-For is believed
    key_prefix: str = "parley"
    storage_retry_seconds: float = 5.0  # after a shared storage failed, count in memory this long

    def __post_init__(self) -> None:
        for name in ("default", *RouteLimit, *AccountLimit):
            value = getattr(self, name)
            try:
                parse_many(value)
            except ValueError:
                raise ValueError(f"invalid rate limit {name}={value!r} (e.g. '30 per minute')") from None

    def limit_for(self, limit: RouteLimit | AccountLimit) -> str:
        return str(getattr(self, limit.value))


@dataclass(frozen=True, slots=True)
class RateLimitMetrics:
    """``parley_rate_limit_rejections_total{endpoint}`` (route templates, never raw paths) and
    ``parley_rate_limit_storage_errors_total`` (shared-storage calls that failed)."""

    rejections: Counter
    storage_errors: Counter

    @classmethod
    def register(cls, registry: CollectorRegistry) -> RateLimitMetrics:
        """Create the families on ``registry`` (once per registry: names must be unique)."""
        return cls(
            rejections=Counter(
                "parley_rate_limit_rejections",
                "Requests refused with 429 by a rate limit",
                ["endpoint"],
                registry=registry,
            ),
            storage_errors=Counter(
                "parley_rate_limit_storage_errors",
                "Failed calls to the shared rate-limit storage (checked in memory instead)",
                registry=registry,
            ),
        )


def rate_limit_gate(
    config: RateLimitConfig, storage: Callable[[], Storage], *, registry: CollectorRegistry
) -> RateLimitGate | None:
    """The app's limits, counting in the storage ``storage()`` makes (called only when limits are
    on) and reporting on ``registry`` (the one ``/metrics`` renders); None when ``config.enabled``
    is false. The app hands it to the HTTP edge (``HttpEdge.rate_limits``), which
    :data:`RATE_LIMITED` and :func:`enforce_account_limit` read."""
    if not config.enabled:
        return None
    return RateLimitGate(
        config, storage(), ClientIdentity(config.trusted_proxies), RateLimitMetrics.register(registry)
    )


async def enforce_rate_limits(request: Request) -> None:
    """Count the request against its route's limits (nothing when the app has them off)."""
    gate = edge_of(request).rate_limits
    if gate is not None:
        await gate.check(request)


RATE_LIMITED = Depends(enforce_rate_limits)
"""For ``APIRouter(dependencies=[RATE_LIMITED])``: every route of the router is limited."""


async def enforce_account_limit(request: Request, limit: AccountLimit, account: str) -> None:
    """Count one attempt on ``account`` against its ``limit`` (nothing when the app has limits off).

    Call it as soon as the account is known and before any work on it (a database read, a
    password hash), so a refused attempt costs nothing and looks the same whether or not the
    account exists. ``account`` is a pseudonym (``audit.email_digest``), never the address
    itself: it ends up in the storage's keys. Storage, fallback, 429 answer and rejection
    counter (labelled with the route's template) are the route limits'.
    """
    gate = edge_of(request).rate_limits
    if gate is not None:
        await gate.check_account(request, limit, account)


def _limiter(config: RateLimitConfig, storage: Storage) -> Limiter:
    """A slowapi limiter counting in ``storage`` with the fixed-window strategy."""
    limiter = Limiter(
        key_func=_request_key,
        default_limits=[config.default],
        strategy="fixed-window",
        storage_uri="memory://",  # replaced below: slowapi takes a URI, never a storage
        key_prefix=config.key_prefix,
        key_style="endpoint",  # one budget per route, not per raw path (ids would split it)
    )
    # Private state (capped, docs/upstream-overrides.md entry 5): every count goes through
    # ``Limiter.limiter``, slowapi's strategy over its storage, so both name the one handed in.
    limiter._storage = storage
    limiter._limiter = FixedWindowRateLimiter(storage)
    return limiter


def _request_key(request: Request) -> str:
    # Set on the event loop by RateLimitGate before each check (the route's, then an account's).
    return str(request.state.rate_limit_key)


def _account_budget(limit: AccountLimit) -> Callable[[Request], None]:
    """A stand-in endpoint naming ``limit`` in the limiter (slowapi keys limits by function name)."""

    def budget(request: Request) -> None:  # never called
        raise NotImplementedError

    budget.__name__ = budget.__qualname__ = f"{limit.value}_budget"
    return budget


_ACCOUNT_BUDGETS: Mapping[AccountLimit, Callable[[Request], None]] = {
    limit: _account_budget(limit) for limit in AccountLimit
}


class RateLimitGate:
    """The app's limiters: the storage handed in, plus memory while a shared storage is down
    (a storage other than this process's memory may be unreachable)."""

    def __init__(
        self, config: RateLimitConfig, storage: Storage, identity: ClientIdentity, metrics: RateLimitMetrics
    ) -> None:
        self._config, self._identity, self._metrics = config, identity, metrics
        self.shared = _limiter(config, storage)
        shared = not isinstance(storage, MemoryStorage)
        self._fallback = _limiter(config, MemoryStorage(wrap_exceptions=True)) if shared else None
        self._registered: set[Callable[..., Any]] = set()
        self._retry_shared_at = 0.0  # time.monotonic() before which the shared storage is skipped
        self._shared_down = False
        for limit, budget in _ACCOUNT_BUDGETS.items():
            self._register(budget, limit)

    async def check(self, request: Request) -> None:
        """Count this request against its route's budget; raise :class:`RateLimited` when spent."""
        endpoint: Callable[..., Any] = request.scope["endpoint"]
        self._register(endpoint, getattr(endpoint, _MARK, None))
        await self._count(request, endpoint, self._identity.key(request))

    async def check_account(self, request: Request, limit: AccountLimit, account: str) -> None:
        """Count an attempt on ``account`` against ``limit``; raise :class:`RateLimited` when spent."""
        await self._count(request, _ACCOUNT_BUDGETS[limit], account_key(account))

    async def _count(self, request: Request, endpoint: Callable[..., Any], key: str) -> None:
        request.state.rate_limit_key = key  # read by _request_key, for this check only
        try:
            if self._fallback is None:
                _evaluate(self.shared, request, endpoint)
            else:
                # A shared storage is a blocking client: keep its round trips off the event loop.
                await anyio.to_thread.run_sync(self._check_shared_or_memory, request, endpoint)
        except RateLimited:
            self._metrics.rejections.labels(endpoint=request.scope["route"].path).inc()
            raise

    def _register(self, endpoint: Callable[..., Any], limit: RouteLimit | AccountLimit | None) -> None:
        """Give ``endpoint`` its own ``limit``, once, in every limiter of this app (None: the defaults)."""
        if limit is None or endpoint in self._registered:
            return
        for limiter in filter(None, (self.shared, self._fallback)):
            # Registration only (the wrapper is dropped): slowapi keys it by qualified name.
            limiter.limit(self._config.limit_for(limit))(endpoint)
        self._registered.add(endpoint)

    def _check_shared_or_memory(self, request: Request, endpoint: Callable[..., Any]) -> None:
        assert self._fallback is not None
        if time.monotonic() >= self._retry_shared_at:
            try:
                _evaluate(self.shared, request, endpoint)
            except StorageError as error:
                self._storage_failed(error)
            else:
                self._storage_answered()
                return
        _evaluate(self._fallback, request, endpoint)

    def _storage_failed(self, error: StorageError) -> None:
        self._metrics.storage_errors.inc()
        self._retry_shared_at = time.monotonic() + self._config.storage_retry_seconds
        self._shared_down = True
        logger.warning(
            "Rate-limit storage unreachable ({}); limiting in memory for the next {}s",
            type(error.storage_error).__name__,
            self._config.storage_retry_seconds,
        )

    def _storage_answered(self) -> None:
        if self._shared_down:
            self._shared_down = False
            logger.info("Rate-limit storage is back; limits are shared again")


def _evaluate(limiter: Limiter, request: Request, endpoint: Callable[..., Any]) -> None:
    try:
        # The call slowapi's own decorator makes: private (capped, see docs/upstream-overrides.md).
        limiter._check_request_limit(request, endpoint, in_middleware=False)
    except RateLimitExceeded as exceeded:
        item, identifiers = request.state.view_rate_limit
        raise RateLimited(item, _retry_after(limiter, item, identifiers)) from exceeded


def _retry_after(limiter: Limiter, item: RateLimitItem, identifiers: list[str]) -> int:
    """Whole seconds until the exhausted window resets (its full length if the storage won't say)."""
    try:
        reset_at = limiter.limiter.get_window_stats(item, *identifiers).reset_time
    except StorageError:
        return int(item.get_expiry())
    return max(1, math.ceil(reset_at - time.time()))
