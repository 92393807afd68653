"""Readiness probe: does the database answer a trivial query, quickly?"""

from __future__ import annotations

import asyncio

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from parley.ports.persistence import StorageUnavailable

from .errors import translated_errors


class PostgresDatabaseProbe:
    """:class:`parley.ports.persistence.DatabaseProbe`: ``SELECT 1`` within ``timeout`` seconds."""

    def __init__(self, engine: AsyncEngine, *, timeout: float = 2.0) -> None:
        self._engine = engine
        self._timeout = timeout

    async def ping(self) -> None:
        try:
            async with asyncio.timeout(self._timeout):
                with translated_errors():
                    async with self._engine.connect() as connection:
                        await connection.execute(text("SELECT 1"))
        except TimeoutError as error:
            raise StorageUnavailable(f"database did not answer within {self._timeout}s") from error
