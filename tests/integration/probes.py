"""Ping a database the way ``/health`` does, with a probe closed afterwards."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from parley.adapters.outbound.postgres.probe import PostgresDatabaseProbe


async def ping(engine: AsyncEngine, *, timeout: float = 5.0) -> None:
    """One ping of a fresh probe of ``engine``."""
    probe = PostgresDatabaseProbe(engine, timeout=timeout)
    try:
        await probe.ping()
    finally:
        await probe.aclose()
