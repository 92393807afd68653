"""Profile use cases for the authenticated user."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from parley.application.chat.running import RunningTurns
from parley.application.memory import UserMemory
from parley.application.principal import Principal
from parley.application.session_cache import RecentAuthSessions
from parley.domain.errors import (
    CurrentPasswordIncorrect,
    EmailAlreadyRegistered,
    NotAuthenticated,
    UserNotFound,
)
from parley.domain.users import Email, PasswordPolicy, User
from parley.ports.agent import ChatAgent
from parley.ports.auth import PasswordHasher
from parley.ports.persistence import UnitOfWork, UnitOfWorkFactory
from parley.ports.system import Clock


async def _load_user(uow: UnitOfWork, principal: Principal) -> User:
    user = await uow.users.get(principal.user_id)
    if user is None:
        raise UserNotFound()
    return user


async def _check_current_password(
    uow_factory: UnitOfWorkFactory, hasher: PasswordHasher, principal: Principal, password: str
) -> None:
    """Verify the caller's current password outside any transaction (bcrypt is slow)."""
    async with uow_factory() as uow:
        user = await _load_user(uow, principal)
    if not await hasher.verify(password, user.password_hash):
        raise CurrentPasswordIncorrect()


class GetProfile:
    """Return the caller's account."""

    def __init__(self, uow: UnitOfWorkFactory) -> None:
        self._uow = uow

    async def execute(self, principal: Principal) -> User:
        async with self._uow() as uow:
            return await _load_user(uow, principal)


@dataclass(frozen=True, slots=True)
class ChangeEmailInput:
    email: str
    current_password: str


class ChangeEmail:
    """Change the caller's e-mail.

    - requires the current password (``CurrentPasswordIncorrect``);
    - the new address follows the :class:`Email` rules and must be free (``EmailAlreadyRegistered``).
    """

    def __init__(self, uow: UnitOfWorkFactory, hasher: PasswordHasher, clock: Clock) -> None:
        self._uow, self._hasher, self._clock = uow, hasher, clock

    async def execute(self, principal: Principal, data: ChangeEmailInput) -> User:
        email = Email.parse(data.email)
        await _check_current_password(self._uow, self._hasher, principal, data.current_password)
        async with self._uow() as uow:
            user = await _load_user(uow, principal)
            if user.email == email:
                return user
            if await uow.users.get_by_email(email) is not None:
                raise EmailAlreadyRegistered()
            user.email, user.updated_at = email, self._clock.now()
            await uow.users.update(user)
            await uow.commit()
        return user


@dataclass(frozen=True, slots=True)
class ChangePasswordInput:
    current_password: str
    new_password: str


class ChangePassword:
    """Change the caller's password.

    - requires the current password; the new one must satisfy the policy (field ``new_password``);
    - every *other* login of the user is revoked; the caller's own stays valid.
    """

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        hasher: PasswordHasher,
        clock: Clock,
        policy: PasswordPolicy | None = None,
        sessions: RecentAuthSessions | None = None,
    ) -> None:
        self._uow, self._hasher, self._clock = uow, hasher, clock
        self._policy = policy or PasswordPolicy()
        self._sessions = sessions or RecentAuthSessions(ttl=0)

    async def execute(self, principal: Principal, data: ChangePasswordInput) -> None:
        self._policy.check(data.new_password, field="new_password")
        await _check_current_password(self._uow, self._hasher, principal, data.current_password)
        new_hash = await self._hasher.hash(data.new_password)
        now = self._clock.now()
        async with self._uow() as uow:
            user = await _load_user(uow, principal)
            user.password_hash, user.updated_at = new_hash, now
            await uow.users.update(user)
            await uow.auth_sessions.revoke_all_for_user(user.id, now, except_session_id=principal.session_id)
            await uow.commit()
        self._sessions.forget_user(user.id)


class DeleteAccount:
    """Delete the caller and everything they own.

    Their replies being generated in this process are stopped first. Rows go in one
    transaction (users cascade to auth sessions, conversations and messages); the agent's
    memory of each conversation is forgotten before (a failure deletes nothing) and after
    (a turn may have ended in between; one running in another process forgets by itself
    when it finds its conversation gone). Their long-term memories are erased likewise, before
    and after (a fact learnt from a turn that ended in between goes too).
    """

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        agent: ChatAgent,
        running: RunningTurns | None = None,
        sessions: RecentAuthSessions | None = None,
        memory: UserMemory | None = None,
    ) -> None:
        self._uow, self._agent, self._memory = uow, agent, memory
        self._running = running or RunningTurns()
        self._sessions = sessions or RecentAuthSessions(ttl=0)

    async def execute(self, principal: Principal) -> None:
        await self._running.interrupt_owner(principal.user_id, error=NotAuthenticated())
        async with self._uow() as uow:
            conversation_ids = await uow.conversations.ids_for_owner(principal.user_id)
        await self._forget(principal.user_id, conversation_ids)
        async with self._uow() as uow:
            conversation_ids = await uow.conversations.ids_for_owner(principal.user_id)
            await uow.users.delete(principal.user_id)
            await uow.commit()
        self._sessions.forget_user(principal.user_id)
        await self._forget(principal.user_id, conversation_ids)

    async def _forget(self, user_id: UUID, conversation_ids: list[UUID]) -> None:
        for conversation_id in conversation_ids:
            await self._agent.forget(conversation_id)
        if self._memory is not None:
            await self._memory.erase(user_id)
