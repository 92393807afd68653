"""The engine factory and URL helpers. Nothing here runs at import time: the container builds them once."""

from __future__ import annotations

from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine

ASYNC_DRIVER = "postgresql+psycopg"
_ACCEPTED_SCHEMES = frozenset({"postgres", "postgresql", "postgresql+psycopg", "postgresql+psycopg_async"})
DEFAULT_CONNECT_TIMEOUT_SECONDS = 5


def to_async_url(url: str | URL) -> URL:
    """Normalise a libpq (``postgresql://``/``postgres://``) or SQLAlchemy URL to psycopg 3 async.

    Raises ValueError for any other scheme (e.g. ``sqlite://``, ``postgresql+asyncpg://``):
    the service speaks one dialect through one driver.
    """
    parsed = make_url(url) if isinstance(url, str) else url
    if parsed.drivername not in _ACCEPTED_SCHEMES:
        raise ValueError(f"unsupported database URL scheme {parsed.drivername!r}; use postgresql://")
    return parsed.set(drivername=ASYNC_DRIVER)


def libpq_url(url: str | URL, *, hide_password: bool = False) -> str:
    """``url`` as libpq (psycopg) takes it: ``postgresql://user:password@host:5432/db``.

    ``hide_password=True``: fit for messages and logs (``postgresql://user:***@host:5432/db``).
    """
    return to_async_url(url).set(drivername="postgresql").render_as_string(hide_password=hide_password)


def shown_url(url: str | URL) -> str:
    """``url`` fit for messages and logs: ``postgresql://user:***@host:5432/db``."""
    return libpq_url(url, hide_password=True)


def create_engine(
    url: str | URL,
    *,
    pool_size: int,
    max_overflow: int,
    pool_timeout: float,
    echo: bool = False,
    connect_timeout: int = DEFAULT_CONNECT_TIMEOUT_SECONDS,
    pre_ping: bool = True,
) -> AsyncEngine:
    """An async engine on psycopg 3.

    - ``pre_ping`` checks each pooled connection before lending it, so the service
      recovers by itself after the database restarts (stale connections are replaced);
    - ``connect_timeout`` (seconds, libpq) bounds how long an unreachable server can stall a
      request; a value already present in the URL wins.
    """
    async_url = to_async_url(url)
    connect_args = {} if "connect_timeout" in async_url.query else {"connect_timeout": connect_timeout}
    return _create_async_engine(
        async_url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=pool_timeout,
        pool_pre_ping=pre_ping,
        echo=echo,
        connect_args=connect_args,
    )
