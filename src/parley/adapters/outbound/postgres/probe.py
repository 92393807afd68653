"""Readiness probe: does the database answer a trivial query, quickly?

The probe has a connection of its own (a one-connection engine beside the app's pool), so it
answers whatever the pool is doing: under a burst every pooled connection is busy, and a health
check queued behind them timed out and reported a perfectly healthy database as down (an
orchestrator would then restart the instance at the worst moment). One round trip on an open
connection also keeps it cheap on a CPU-starved event loop.
"""

from __future__ import annotations

import asyncio

import psycopg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from parley.ports.persistence import StorageUnavailable

from .engine import DEFAULT_CONNECT_TIMEOUT_SECONDS, create_engine, libpq_url, shown_url
from .errors import translated_errors

DEFAULT_PROBE_TIMEOUT_SECONDS = 5.0


class PostgresDatabaseProbe:
    """:class:`parley.ports.persistence.DatabaseProbe`: ``SELECT 1`` within ``timeout`` seconds.

    - on its own connection (opened at the first ping, kept, re-opened when it broke);
    - a connection found dead (the database restarted since) is replaced and the query tried
      once more, so the first probe after a restart does not report an outage that is over;
    - concurrent pings wait for the one connection (within their timeout);
    - :meth:`aclose` closes the connection.
    """

    def __init__(self, engine: AsyncEngine, *, timeout: float = DEFAULT_PROBE_TIMEOUT_SECONDS) -> None:
        self._timeout = timeout
        # No pre-ping: one round trip per probe; a dead connection is retried instead (ping).
        self._engine = create_engine(
            engine.url, pool_size=1, max_overflow=0, pool_timeout=timeout, pre_ping=False
        )

    async def ping(self) -> None:
        try:
            async with asyncio.timeout(self._timeout):
                try:
                    await self._select_one()
                except StorageUnavailable:
                    await self._select_one()  # a stale connection was dropped: one fresh try
        except TimeoutError as error:
            raise StorageUnavailable(f"database did not answer within {self._timeout}s") from error

    async def _select_one(self) -> None:
        with translated_errors():
            async with self._engine.connect() as connection:
                await connection.execute(text("SELECT 1"))

    async def aclose(self) -> None:
        await self._engine.dispose()


async def ensure_reachable(url: str, *, timeout: float = DEFAULT_CONNECT_TIMEOUT_SECONDS) -> None:
    """Connect to ``url`` once, or raise :class:`StorageUnavailable` saying which database (its
    URL without the password) could not be reached, and why, in one line.

    Run before anything else opens pools: an unreachable database at start-up used to produce
    dozens of pool warnings and a traceback before the process gave up.
    """
    try:
        async with asyncio.timeout(timeout + 1):
            connection = await psycopg.AsyncConnection.connect(
                libpq_url(url), connect_timeout=max(1, round(timeout))
            )
        await connection.close()
    except (psycopg.Error, OSError) as error:
        reason = " ".join(str(error).split()) or type(error).__name__
        raise StorageUnavailable(f"Cannot reach the database at {shown_url(url)}: {reason}") from None
    except TimeoutError:
        raise StorageUnavailable(
            f"Cannot reach the database at {shown_url(url)}: no answer within {timeout:.0f}s"
        ) from None


async def wait_until_reachable(
    url: str, *, within: float, connect_timeout: float = DEFAULT_CONNECT_TIMEOUT_SECONDS
) -> None:
    """Try :func:`ensure_reachable` until the database answers, for at most ``within`` seconds.

    For a prestart step (``parley migrate --wait``): in a fresh stack the database container
    may still be starting when the API's starts. The pause between attempts grows from 0.5 s
    to 2 s. After the bound, raise :class:`StorageUnavailable` with one line: how long it
    waited, and the last reason (the URL without its password). ``within`` <= 0 tries once.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    pause = 0.5
    while True:
        remaining = deadline - loop.time()
        try:
            # An attempt never runs past the bound by more than the 1 s libpq minimum.
            await ensure_reachable(url, timeout=max(1.0, min(connect_timeout, remaining)))
            return
        except StorageUnavailable as unreachable:
            remaining = deadline - loop.time()
            if remaining <= 0:
                if within <= 0:
                    raise
                raise StorageUnavailable(f"{unreachable} (gave up after waiting {within:g}s)") from None
        await asyncio.sleep(min(pause, remaining))
        pause = min(pause * 2, 2.0)
