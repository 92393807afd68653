"""The PostgreSQL unit of work: one db_session, one transaction (or autocommit), four repositories."""

from __future__ import annotations

from contextlib import suppress
from types import TracebackType
from typing import Self

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

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
from .errors import translated_errors
from .statements import StatementRunner

_AUTOCOMMIT = {"isolation_level": "AUTOCOMMIT"}


class PostgresUnitOfWork:
    """:class:`parley.ports.persistence.UnitOfWork` over an ``AsyncSession``.

    - entering checks out a connection and begins the transaction, so an unreachable
      database fails right at ``async with`` with :class:`StorageUnavailable`;
    - ``commit``/``rollback`` end the transaction; later statements start a new one;
    - leaving the block rolls back whatever was not committed and returns the connection;
    - ``read_only`` and ``single_write`` run the connection in autocommit: no BEGIN and no
      COMMIT/ROLLBACK round trips (SQLAlchemy restores the isolation level when the connection
      goes back). Each statement commits by itself: enough for reads and for one write, as
      every writing repository call is atomic by itself; ``commit`` then sends nothing.
    """

    # Typed as the ports: the Protocol's attributes are mutable, hence invariant.
    users: UserRepository
    auth_sessions: AuthSessionRepository
    conversations: ConversationRepository
    messages: MessageRepository

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        read_only: bool = False,
        single_write: bool = False,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._autocommit = read_only or single_write
        self._db_session: AsyncSession | None = None

    async def __aenter__(self) -> Self:
        db_session = self._sessionmaker()
        try:
            with translated_errors():
                await db_session.connection(execution_options=_AUTOCOMMIT if self._autocommit else None)
        except BaseException:
            await db_session.close()
            raise
        self._db_session = db_session
        runner = StatementRunner(db_session, autocommit=self._autocommit)
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
        db_session, self._db_session = self._active(), None
        if exc is None:
            with translated_errors():
                await db_session.close()  # rolls back anything uncommitted
            return
        # Already failing: a dead connection must not hide the original error.
        with suppress(StorageUnavailable), translated_errors():
            await db_session.close()

    async def commit(self) -> None:
        with translated_errors():
            await self._active().commit()

    async def rollback(self) -> None:
        with translated_errors():
            await self._active().rollback()

    def _active(self) -> AsyncSession:
        if self._db_session is None:
            raise RuntimeError("use the unit of work inside 'async with'")
        return self._db_session


def postgres_unit_of_work_factory(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> UnitOfWorkFactory:
    """A ``UnitOfWorkFactory``: each call yields a fresh, not yet entered unit of work."""

    def create(*, read_only: bool = False, single_write: bool = False) -> PostgresUnitOfWork:
        return PostgresUnitOfWork(sessionmaker, read_only=read_only, single_write=single_write)

    return create
