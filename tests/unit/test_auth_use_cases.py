"""Authentication use cases (application.auth) wired by hand with in-memory fakes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import pytest

from parley.adapters.outbound.jwt.issuer import PyJwtTokenIssuer
from parley.application.auth import (
    Authenticate,
    LogIn,
    LogInInput,
    LogOut,
    RefreshTokens,
    RegisterInput,
    RegisterUser,
)
from parley.domain.errors import (
    EmailAlreadyRegistered,
    InvalidCredentials,
    NotAuthenticated,
    RefreshTokenReused,
    ValidationFailed,
)
from tests.fakes.persistence import InMemoryDatabase
from tests.fakes.security import FakePasswordHasher
from tests.fakes.system import FakeClock, SequentialIdGenerator

pytestmark = pytest.mark.unit

PASSWORD = "Str0ng!Passw0rd"


@dataclass
class World:
    db: InMemoryDatabase = field(default_factory=InMemoryDatabase)
    hasher: FakePasswordHasher = field(default_factory=FakePasswordHasher)
    clock: FakeClock = field(default_factory=FakeClock)
    ids: SequentialIdGenerator = field(default_factory=SequentialIdGenerator)

    def __post_init__(self) -> None:
        self.issuer = PyJwtTokenIssuer(
            "x" * 48, access_ttl=timedelta(hours=1), refresh_ttl=timedelta(days=30), clock=self.clock
        )

    def register(self) -> RegisterUser:
        return RegisterUser(self.db.unit_of_work, self.hasher, self.clock, self.ids)

    def log_in(self) -> LogIn:
        return LogIn(self.db.unit_of_work, self.hasher, self.issuer, self.clock, self.ids)

    def refresh(self) -> RefreshTokens:
        return RefreshTokens(self.db.unit_of_work, self.issuer, self.clock, self.ids)

    def authenticate(self) -> Authenticate:
        return Authenticate(self.db.unit_of_work, self.issuer, self.clock)

    def log_out(self) -> LogOut:
        return LogOut(self.db.unit_of_work, self.issuer, self.clock)


@pytest.fixture
def world() -> World:
    return World()


async def test_register_normalises_email_and_stores_only_a_hash(world: World) -> None:
    user = await world.register().execute(RegisterInput(email="  Ada@Example.COM ", password=PASSWORD))

    assert user.email.value == "ada@example.com"
    stored = world.db.users[user.id]
    assert PASSWORD not in stored.password_hash
    assert await world.hasher.verify(PASSWORD, stored.password_hash)


async def test_register_reports_every_broken_rule_of_both_fields(world: World) -> None:
    with pytest.raises(ValidationFailed) as failure:
        await world.register().execute(RegisterInput(email="not-an-email", password="short"))

    fields = [p.field for p in failure.value.problems]
    assert fields.count("email") == 1
    assert fields.count("password") == 4  # length, uppercase, digit, special
    assert world.db.users == {}


async def test_register_refuses_an_email_that_differs_only_in_case(world: World) -> None:
    await world.register().execute(RegisterInput(email="ada@example.com", password=PASSWORD))

    with pytest.raises(EmailAlreadyRegistered):
        await world.register().execute(RegisterInput(email="ADA@example.com", password=PASSWORD))


async def _registered_and_logged_in(world: World) -> tuple[str, str]:
    await world.register().execute(RegisterInput(email="ada@example.com", password=PASSWORD))
    _, pair = await world.log_in().execute(LogInInput(email="ADA@example.com ", password=PASSWORD))
    return pair.access_token, pair.refresh_token


async def test_log_in_returns_tokens_that_authenticate_the_user(world: World) -> None:
    access, _ = await _registered_and_logged_in(world)

    principal = await world.authenticate().execute(access)

    user_id = next(iter(world.db.users))
    assert principal.user_id == user_id


@pytest.mark.parametrize(
    ("email", "password"), [("ada@example.com", "Wr0ng!Password"), ("bob@example.com", PASSWORD)]
)
async def test_log_in_fails_the_same_way_for_unknown_email_and_wrong_password(
    world: World, email: str, password: str
) -> None:
    await world.register().execute(RegisterInput(email="ada@example.com", password=PASSWORD))
    before = world.hasher.verifications

    with pytest.raises(InvalidCredentials):
        await world.log_in().execute(LogInInput(email=email, password=password))

    assert world.hasher.verifications == before + 1  # the unknown account paid for a check too


async def test_log_in_with_a_malformed_email_is_just_invalid_credentials(world: World) -> None:
    with pytest.raises(InvalidCredentials):
        await world.log_in().execute(LogInInput(email="nonsense", password=PASSWORD))


async def test_refresh_rotates_and_the_old_refresh_token_dies(world: World) -> None:
    _, refresh = await _registered_and_logged_in(world)

    refreshed = await world.refresh().execute(refresh)

    assert refreshed.tokens.refresh_token != refresh
    principal = await world.authenticate().execute(refreshed.tokens.access_token)
    assert refreshed.user_id == principal.user_id


async def test_reusing_a_refresh_token_revokes_the_whole_login(world: World) -> None:
    access, refresh = await _registered_and_logged_in(world)
    new_pair = (await world.refresh().execute(refresh)).tokens

    with pytest.raises(RefreshTokenReused) as reuse:
        await world.refresh().execute(refresh)

    assert reuse.value.user_id == next(iter(world.db.users))  # the owner, for the audit

    for token in (access, new_pair.access_token):
        with pytest.raises(NotAuthenticated):
            await world.authenticate().execute(token)
    with pytest.raises(NotAuthenticated):
        await world.refresh().execute(new_pair.refresh_token)


async def test_tokens_are_not_interchangeable(world: World) -> None:
    access, refresh = await _registered_and_logged_in(world)

    with pytest.raises(NotAuthenticated):
        await world.authenticate().execute(refresh)
    with pytest.raises(NotAuthenticated):
        await world.refresh().execute(access)


async def test_an_expired_login_no_longer_authenticates(world: World) -> None:
    access, refresh = await _registered_and_logged_in(world)
    world.clock.advance(timedelta(days=31))

    with pytest.raises(NotAuthenticated):
        await world.authenticate().execute(access)
    with pytest.raises(NotAuthenticated):
        await world.refresh().execute(refresh)


async def test_log_out_kills_the_access_and_refresh_tokens_of_that_login_only(world: World) -> None:
    access, refresh = await _registered_and_logged_in(world)
    _, other = await world.log_in().execute(LogInInput(email="ada@example.com", password=PASSWORD))
    principal = await world.authenticate().execute(access)

    await world.log_out().execute(principal)

    with pytest.raises(NotAuthenticated):
        await world.authenticate().execute(access)
    with pytest.raises(NotAuthenticated):
        await world.refresh().execute(refresh)
    await world.authenticate().execute(other.access_token)


async def test_log_out_also_revokes_a_refresh_token_of_another_login_of_the_same_user(world: World) -> None:
    access, _ = await _registered_and_logged_in(world)
    _, other = await world.log_in().execute(LogInInput(email="ada@example.com", password=PASSWORD))

    await world.log_out().execute(await world.authenticate().execute(access), other.refresh_token)

    with pytest.raises(NotAuthenticated):
        await world.authenticate().execute(other.access_token)


async def test_log_out_ignores_a_garbage_refresh_token(world: World) -> None:
    access, _ = await _registered_and_logged_in(world)

    await world.log_out().execute(await world.authenticate().execute(access), "garbage")

    with pytest.raises(NotAuthenticated):
        await world.authenticate().execute(access)
