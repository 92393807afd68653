"""Repositories for users and their auth sessions."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy import bindparam, delete, insert, select, update

from parley.domain.auth import AuthSession
from parley.domain.users import Email, User

from .mappers import auth_session_from_row, auth_session_to_row, user_from_row, user_to_row
from .statements import StatementRunner
from .tables import auth_sessions, users


class PostgresUserRepository:
    """:class:`parley.ports.persistence.UserRepository` on the ``users`` table."""

    def __init__(self, runner: StatementRunner) -> None:
        self._runner = runner

    async def add(self, user: User) -> None:
        await self._runner.execute_guarded(insert(users).values(user_to_row(user)))

    async def get(self, user_id: UUID) -> User | None:
        result = await self._runner.read(select(users).where(users.c.id == user_id))
        row = result.mappings().one_or_none()
        return None if row is None else user_from_row(row)

    async def get_by_email(self, email: Email) -> User | None:
        result = await self._runner.read(select(users).where(users.c.email == email.value))
        row = result.mappings().one_or_none()
        return None if row is None else user_from_row(row)

    async def update(self, user: User) -> None:
        statement = (
            update(users)
            .where(users.c.id == user.id)
            .values(email=user.email.value, password_hash=user.password_hash, updated_at=user.updated_at)
        )
        await self._runner.execute_guarded(statement)

    async def delete(self, user_id: UUID) -> None:
        # Auth sessions, conversations and messages go with it: ON DELETE CASCADE.
        await self._runner.execute(delete(users).where(users.c.id == user_id))


# Every authenticated request reads its auth session: one statement object, built once, so
# SQLAlchemy's memoized cache key is reused (see the turn statements in reply_slots.py).
_GET_AUTH_SESSION = select(auth_sessions).where(
    auth_sessions.c.id == bindparam("session_id", type_=auth_sessions.c.id.type)
)
_GET_AUTH_SESSION_FOR_UPDATE = _GET_AUTH_SESSION.with_for_update()


class PostgresAuthSessionRepository:
    """:class:`parley.ports.persistence.AuthSessionRepository` on ``auth_sessions``."""

    def __init__(self, runner: StatementRunner) -> None:
        self._runner = runner

    async def add(self, auth_session: AuthSession) -> None:
        await self._runner.execute(insert(auth_sessions).values(auth_session_to_row(auth_session)))

    async def get(self, session_id: UUID, *, for_update: bool = False) -> AuthSession | None:
        parameters = {"session_id": session_id}
        if for_update:  # a locking read: it begins the transaction, whose end releases the lock
            result = await self._runner.execute(_GET_AUTH_SESSION_FOR_UPDATE, parameters)
        else:
            result = await self._runner.read(_GET_AUTH_SESSION, parameters)
        row = result.mappings().one_or_none()
        return None if row is None else auth_session_from_row(row)

    async def update(self, auth_session: AuthSession) -> None:
        statement = (
            update(auth_sessions)
            .where(auth_sessions.c.id == auth_session.id)
            .values(refresh_token_id=auth_session.refresh_token_id, revoked_at=auth_session.revoked_at)
        )
        await self._runner.execute(statement)

    async def revoke_all_for_user(
        self, user_id: UUID, now: datetime, *, except_session_id: UUID | None = None
    ) -> int:
        """Revoke the user's active (unrevoked, unexpired) sessions, except one."""
        statement = (
            update(auth_sessions)
            .where(
                auth_sessions.c.user_id == user_id,
                auth_sessions.c.revoked_at.is_(None),
                auth_sessions.c.expires_at > now,
            )
            .values(revoked_at=now)
            .returning(auth_sessions.c.id)
        )
        if except_session_id is not None:
            statement = statement.where(auth_sessions.c.id != except_session_id)
        return len((await self._runner.execute(statement)).all())
