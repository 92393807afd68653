"""The PostgreSQL unit of work: one connection, one transaction begun when first needed, four repositories."""

from __future__ import annotations

from contextlib import nullcontext, suppress
from types import TracebackType
from typing import Self

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from parley.ports.persistence import (
    AuthSessionRepository,
    ConversationRepository,
    MessageRepository,
    StorageUnavailable,
    UnitOfWorkFactory,
    UserRepository,
)

from .accounts import PostgresAuthSessionRepository, PostgresUserRepository
from .chat import PostgresConversationRepository, PostgresMessageRepository
from .statements import LazyTransaction, StatementRunner, autocommit_connection, close_connection


class PostgresUnitOfWork:
    """:class:`parley.ports.persistence.UnitOfWork` over one pooled connection.

    - entering checks out a connection (in autocommit), so an unreachable database fails right
      at ``async with`` with :class:`StorageUnavailable`;
    - the transaction begins (``BEGIN``) just before the first write or locking read; plain
      reads before it run on their own, which under READ COMMITTED sees what they would see
      inside it (see :class:`LazyTransaction`), so a unit of work that only reads sends no
      BEGIN, COMMIT or ROLLBACK at all;
    - ``commit``/``rollback`` end the transaction, if one was begun; later writes begin a new one;
    - leaving the block rolls back whatever was not committed and returns the connection.
    """

    # Typed as the ports: the Protocol's attributes are mutable, hence invariant.
    users: UserRepository
    auth_sessions: AuthSessionRepository
    conversations: ConversationRepository
    messages: MessageRepository

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._open: tuple[AsyncConnection, LazyTransaction] | None = None

    async def __aenter__(self) -> Self:
        connection = await autocommit_connection(self._engine)
        transaction = LazyTransaction(connection)
        self._open = connection, transaction
        runner = StatementRunner(connection, transaction)
        self.users = PostgresUserRepository(runner)
        self.auth_sessions = PostgresAuthSessionRepository(runner)
        self.conversations = PostgresConversationRepository(runner)
        self.messages = PostgresMessageRepository(runner)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        connection, transaction = self._active()
        self._open = None
        failing = exc is not None
        try:
            # Already failing: a dead connection must not hide the original error.
            with suppress(StorageUnavailable) if failing else nullcontext():
                await transaction.rollback()  # whatever was not committed
        except BaseException:
            await close_connection(connection, failing=True)
            raise
        await close_connection(connection, failing=failing)

    async def commit(self) -> None:
        await self._active()[1].commit()

    async def rollback(self) -> None:
        await self._active()[1].rollback()

    def _active(self) -> tuple[AsyncConnection, LazyTransaction]:
        if self._open is None:
            raise RuntimeError("use the unit of work inside 'async with'")
        return self._open


def postgres_unit_of_work_factory(engine: AsyncEngine) -> UnitOfWorkFactory:
    """A ``UnitOfWorkFactory``: each call yields a fresh, not yet entered unit of work."""

    def create() -> PostgresUnitOfWork:
        return PostgresUnitOfWork(engine)

    return create
