"""Profile use cases wired by hand with in-memory fakes."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

import pytest

from parley.application.auth import LogInInput, RegisterInput
from parley.application.principal import Principal
from parley.application.users import (
    ChangeEmail,
    ChangeEmailInput,
    ChangePassword,
    ChangePasswordInput,
    DeleteAccount,
    GetProfile,
)
from parley.domain.chat import Conversation
from parley.domain.errors import (
    CurrentPasswordIncorrect,
    EmailAlreadyRegistered,
    InvalidCredentials,
    NotAuthenticated,
    ValidationFailed,
)
from tests.fakes.agent import ScriptedChatAgent
from tests.unit.test_auth_use_cases import PASSWORD, World

pytestmark = pytest.mark.unit


@pytest.fixture
def world() -> World:
    return World()


async def _sign_up(world: World, email: str = "ada@example.com") -> Principal:
    await world.register().execute(RegisterInput(email=email, password=PASSWORD))
    _, pair = await world.log_in().execute(LogInInput(email=email, password=PASSWORD))
    return await world.authenticate().execute(pair.access_token)


async def test_get_profile_returns_the_callers_account(world: World) -> None:
    principal = await _sign_up(world)

    user = await GetProfile(world.db.unit_of_work).execute(principal)

    assert user.id == principal.user_id
    assert user.email.value == "ada@example.com"


async def test_change_email_needs_the_current_password(world: World) -> None:
    principal = await _sign_up(world)
    change = ChangeEmail(world.db.unit_of_work, world.hasher, world.clock)

    with pytest.raises(CurrentPasswordIncorrect):
        await change.execute(principal, ChangeEmailInput(email="new@example.com", current_password="nope"))

    assert world.db.users[principal.user_id].email.value == "ada@example.com"


async def test_change_email_normalises_and_moves_updated_at(world: World) -> None:
    principal = await _sign_up(world)
    world.clock.advance(timedelta(minutes=5))

    user = await ChangeEmail(world.db.unit_of_work, world.hasher, world.clock).execute(
        principal, ChangeEmailInput(email=" New@Example.com", current_password=PASSWORD)
    )

    assert user.email.value == "new@example.com"
    assert user.updated_at > user.created_at
    assert world.db.users[principal.user_id].email.value == "new@example.com"


async def test_change_email_refuses_a_taken_address(world: World) -> None:
    principal = await _sign_up(world)
    await _sign_up(world, "bob@example.com")

    with pytest.raises(EmailAlreadyRegistered):
        await ChangeEmail(world.db.unit_of_work, world.hasher, world.clock).execute(
            principal, ChangeEmailInput(email="BOB@example.com", current_password=PASSWORD)
        )


async def test_change_password_checks_policy_on_new_password_field(world: World) -> None:
    principal = await _sign_up(world)

    with pytest.raises(ValidationFailed) as failure:
        await ChangePassword(world.db.unit_of_work, world.hasher, world.clock).execute(
            principal, ChangePasswordInput(current_password=PASSWORD, new_password="weak")
        )

    assert {p.field for p in failure.value.problems} == {"new_password"}


async def test_change_password_revokes_other_logins_but_keeps_the_callers(world: World) -> None:
    principal = await _sign_up(world)
    _, other = await world.log_in().execute(LogInInput(email="ada@example.com", password=PASSWORD))

    await ChangePassword(world.db.unit_of_work, world.hasher, world.clock).execute(
        principal, ChangePasswordInput(current_password=PASSWORD, new_password="N3w!Password")
    )

    with pytest.raises(NotAuthenticated):
        await world.authenticate().execute(other.access_token)
    active = [s for s in world.db.auth_sessions.values() if s.revoked_at is None]
    assert [s.id for s in active] == [principal.session_id]
    with pytest.raises(InvalidCredentials):
        await world.log_in().execute(LogInInput(email="ada@example.com", password=PASSWORD))
    await world.log_in().execute(LogInInput(email="ada@example.com", password="N3w!Password"))


async def test_delete_account_removes_rows_and_forgets_agent_memory(world: World) -> None:
    principal = await _sign_up(world)
    conversation_id = UUID(int=999)
    async with world.db.unit_of_work() as uow:
        now = world.clock.now()
        await uow.conversations.add(
            Conversation(
                id=conversation_id,
                user_id=principal.user_id,
                name="chat",
                created_at=now,
                updated_at=now,
                last_active_at=now,
            )
        )
        await uow.commit()
    agent = ScriptedChatAgent()

    await DeleteAccount(world.db.unit_of_work, agent).execute(principal)

    assert world.db.users == {}
    assert world.db.conversations == {}
    assert world.db.auth_sessions == {}
    assert conversation_id in agent.forgotten
