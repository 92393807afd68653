"""What repositories run statements through: a db_session whose failures come out translated."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Result
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Executable

from .errors import translated_errors


class StatementRunner:
    """Executes Core statements in the unit of work's transaction; never commits.

    ``autocommit``: the connection runs without a transaction block, each statement commits
    by itself.
    """

    def __init__(self, db_session: AsyncSession, *, autocommit: bool = False) -> None:
        self._db_session = db_session
        self._autocommit = autocommit

    async def execute(self, statement: Executable, parameters: dict[str, Any] | None = None) -> Result[Any]:
        """Run ``statement``; ``parameters`` fill its named ``bindparam()`` placeholders."""
        with translated_errors():
            return await self._db_session.execute(statement, parameters)

    async def execute_guarded(self, statement: Executable) -> Result[Any]:
        """Run ``statement`` inside a savepoint.

        Used where a violation is a business outcome (a taken e-mail): the failure
        undoes only this statement, so the transaction stays usable, as in the fake.
        In autocommit the statement already is its own transaction (and PostgreSQL
        refuses SAVEPOINT outside a transaction block), so it runs as it is.
        """
        if self._autocommit:
            return await self.execute(statement)
        with translated_errors():
            async with self._db_session.begin_nested():
                return await self._db_session.execute(statement)
