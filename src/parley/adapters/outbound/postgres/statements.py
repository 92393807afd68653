"""How repositories run statements: on one autocommit connection whose failures come out translated,
with the unit of work's transaction begun only before its first write (or locking read).

Why autocommit plus a lazy BEGIN: a unit of work that only reads (most requests: the token check,
a history page, a conversation list) then costs its SELECTs and nothing else, where a transaction
costs a BEGIN and a ROLLBACK round trip more (and psycopg drops its prepared statements on each
ROLLBACK). Counted with ``log_statement`` when pure reads first skipped the transaction: a
non-streamed chat turn went from 24 statements to 15; same CPU within noise here, fewer round
trips matter most with a remote database. The port knows nothing of it: a unit of work behaves
as one transaction either way (see :class:`LazyTransaction` for why).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

from sqlalchemy import Select
from sqlalchemy.engine import Result
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql import Executable

from parley.ports.persistence import StorageUnavailable

from .errors import translated_errors

# Explicit, so the reasoning in LazyTransaction holds whatever the server's default is.
_BEGIN = "BEGIN ISOLATION LEVEL READ COMMITTED"


async def autocommit_connection(engine: AsyncEngine) -> AsyncConnection:
    """A pooled connection in autocommit: psycopg sends no BEGIN of its own, so each statement
    commits by itself unless a BEGIN was sent. An unreachable database fails here with
    :class:`StorageUnavailable`. Give it back with :func:`close_connection`."""
    with translated_errors():
        connection = await engine.connect()
    try:
        with translated_errors():
            await connection.execution_options(isolation_level="AUTOCOMMIT")
    except BaseException:
        await close_connection(connection, failing=True)
        raise
    return connection


async def close_connection(connection: AsyncConnection, *, failing: bool) -> None:
    """Give the connection back to the pool. SQLAlchemy rolls back a transaction left open and
    restores the isolation level (a client-side flag: no round trip), so the next borrower gets
    an idle, transactional connection. ``failing``: the caller is already raising, and a dead
    connection's error must not hide the original one."""
    if failing:
        with suppress(StorageUnavailable), translated_errors():
            await connection.close()
        return
    with translated_errors():
        await connection.close()


@asynccontextmanager
async def autocommit_block(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """:func:`autocommit_connection` for the block."""
    connection = await autocommit_connection(engine)
    try:
        yield connection
    except BaseException:
        await close_connection(connection, failing=True)
        raise
    await close_connection(connection, failing=False)


class LazyTransaction:
    """A transaction on an autocommit connection, begun only when a statement needs it.

    Reads before the BEGIN see exactly what they would see inside the transaction: under READ
    COMMITTED (the server's default, and what the BEGIN asks for explicitly) every statement
    takes a snapshot of its own, inside a transaction block or not, so a plain read sees what was
    committed when it started either way. What a transaction adds is that its writes (and row
    locks) stay private until COMMIT and are undone by ROLLBACK: hence the BEGIN before the first
    write or locking read. Nothing written before it exists to be undone.
    """

    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection
        self.is_open = False

    async def ensure_begun(self) -> None:
        if not self.is_open:
            await self._send(_BEGIN)
            self.is_open = True

    async def commit(self) -> None:
        """COMMIT when a transaction is open (nothing to send otherwise)."""
        if self.is_open:
            self.is_open = False  # a failed COMMIT ends the transaction too
            await self._send("COMMIT")

    async def rollback(self) -> None:
        """ROLLBACK when a transaction is open (nothing to send otherwise)."""
        if self.is_open:
            self.is_open = False
            await self._send("ROLLBACK")

    async def _send(self, command: str) -> None:
        with translated_errors():
            await self._connection.exec_driver_sql(command)


class StatementRunner:
    """Executes Core statements on a connection in autocommit; never commits.

    - :meth:`read` runs a plain read (a SELECT that neither locks nor writes) as it is;
    - :meth:`execute` runs anything else, first beginning ``transaction`` (when given and not
      yet begun); without a transaction (the reply slots), each statement commits by itself.
    """

    def __init__(self, connection: AsyncConnection, transaction: LazyTransaction | None = None) -> None:
        self._connection = connection
        self._transaction = transaction

    async def read(self, statement: Select[Any], parameters: dict[str, Any] | None = None) -> Result[Any]:
        """Run a SELECT without ``FOR UPDATE`` (a locking read goes through :meth:`execute`)."""
        with translated_errors():
            result: Result[Any] = await self._connection.execute(statement, parameters)
            return result

    async def execute(self, statement: Executable, parameters: dict[str, Any] | None = None) -> Result[Any]:
        """Run ``statement`` in the transaction; ``parameters`` fill its named ``bindparam()``s."""
        if self._transaction is not None:
            await self._transaction.ensure_begun()
        with translated_errors():
            return await self._connection.execute(statement, parameters)

    async def execute_guarded(self, statement: Executable) -> Result[Any]:
        """Run ``statement`` inside a savepoint.

        Used where a violation is a business outcome (a taken e-mail): the failure undoes only
        this statement, so the transaction stays usable, as in the fake. Without a transaction
        the statement already is its own one (and PostgreSQL refuses SAVEPOINT outside a
        transaction block), so it runs as it is.
        """
        if self._transaction is None:
            return await self.execute(statement)
        await self._transaction.ensure_begun()
        with translated_errors():
            await self._connection.exec_driver_sql("SAVEPOINT guarded")
            try:
                result = await self._connection.execute(statement)
            except BaseException:
                # On a dead connection this fails too: the original error tells what happened.
                with suppress(Exception):
                    await self._connection.exec_driver_sql("ROLLBACK TO SAVEPOINT guarded")
                raise
            await self._connection.exec_driver_sql("RELEASE SAVEPOINT guarded")
            return result
