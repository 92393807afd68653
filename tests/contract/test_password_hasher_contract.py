"""The ``PasswordHasher`` contract, for ``FakePasswordHasher`` and ``PasslibBcryptHasher``."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from parley.adapters.outbound.bcrypt import PasslibBcryptHasher
from parley.ports.auth import PasswordHasher
from tests.fakes.security import FakePasswordHasher

pytestmark = pytest.mark.contract

PASSWORD = "Correct-Horse-9-Battery"
# bcrypt's cost floor keeps the suite fast; the off-loop test below uses the production cost.
FAST_ROUNDS = 4


@pytest.fixture(params=["fake", "bcrypt"])
def hasher(request: pytest.FixtureRequest) -> Iterator[PasswordHasher]:
    if request.param == "fake":
        yield FakePasswordHasher()
        return
    real = PasslibBcryptHasher(rounds=FAST_ROUNDS, max_workers=2)
    yield real
    real.close()


@pytest.fixture
def bcrypt_hasher() -> Iterator[PasslibBcryptHasher]:
    real = PasslibBcryptHasher(rounds=FAST_ROUNDS, max_workers=2)
    yield real
    real.close()


async def test_hash_never_contains_the_password(hasher: PasswordHasher) -> None:
    hashed = await hasher.hash(PASSWORD)

    assert PASSWORD not in hashed


async def test_the_right_password_verifies(hasher: PasswordHasher) -> None:
    hashed = await hasher.hash(PASSWORD)

    assert await hasher.verify(PASSWORD, hashed) is True


@pytest.mark.parametrize("attempt", ["", "correct-horse-9-battery", PASSWORD + " ", PASSWORD[:-1]])
async def test_a_wrong_password_does_not_verify(hasher: PasswordHasher, attempt: str) -> None:
    hashed = await hasher.hash(PASSWORD)

    assert await hasher.verify(attempt, hashed) is False


async def test_the_same_password_hashes_differently_each_time(hasher: PasswordHasher) -> None:
    first, second = await hasher.hash(PASSWORD), await hasher.hash(PASSWORD)

    assert first != second
    assert await hasher.verify(PASSWORD, first)
    assert await hasher.verify(PASSWORD, second)


@pytest.mark.parametrize(
    "shared_prefix",
    ["a" * 72, "é" * 36, "🔐" * 18],  # each exactly 72 bytes of UTF-8: where bcrypt stops reading
    ids=["ascii", "two-byte", "four-byte"],
)
async def test_every_character_counts_past_byte_72(hasher: PasswordHasher, shared_prefix: str) -> None:
    assert len(shared_prefix.encode()) == 72
    original, other = shared_prefix + "X" * 28, shared_prefix + "Y" * 28

    hashed = await hasher.hash(original)

    assert await hasher.verify(original, hashed) is True
    assert await hasher.verify(other, hashed) is False


@pytest.mark.parametrize(
    "password", ["pässwörd-Ünïcödé-1!", "密码-安全-2024#", "🔐🗝️ emoji-Key-7", "tab\tand\x00nul"]
)
async def test_unicode_passwords_round_trip(hasher: PasswordHasher, password: str) -> None:
    hashed = await hasher.hash(password)

    assert await hasher.verify(password, hashed) is True
    assert await hasher.verify(password[:-1], hashed) is False


@pytest.mark.parametrize("password", [PASSWORD, ""])
async def test_verifying_against_no_hash_is_false(hasher: PasswordHasher, password: str) -> None:
    assert await hasher.verify(password, None) is False


@pytest.mark.parametrize(
    "malformed",
    [
        "",
        "not-a-hash",
        "$2b$04$tooshort",
        "$bcrypt-sha256$v=2,t=2b,r=4$xxx",
        "fake-sha256$$",
        "$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG",
    ],
)
async def test_a_malformed_hash_verifies_as_false(hasher: PasswordHasher, malformed: str) -> None:
    assert await hasher.verify(PASSWORD, malformed) is False


async def test_a_truncated_hash_verifies_as_false(hasher: PasswordHasher) -> None:
    hashed = await hasher.hash(PASSWORD)

    assert await hasher.verify(PASSWORD, hashed[:-5]) is False


async def test_fake_hasher_pays_for_a_check_even_without_a_hash() -> None:
    fake = FakePasswordHasher()

    await fake.verify(PASSWORD, None)

    assert fake.verifications == 1


async def test_bcrypt_hashing_runs_off_the_event_loop() -> None:
    """A ticker task keeps running while eight production-cost checks are in flight.

    Were bcrypt run on the loop, each check would freeze it for ~0.25 s and the ticker could only
    step between checks (at most ~9 ticks); off the loop it ticks every millisecond or so.
    """
    hasher = PasslibBcryptHasher(rounds=12, max_workers=4)
    try:
        hashed = await hasher.hash(PASSWORD)
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.001)
                ticks += 1

        ticking = asyncio.create_task(ticker())
        results = await asyncio.gather(*(hasher.verify(PASSWORD, hashed) for _ in range(8)))
        ticking.cancel()
    finally:
        await hasher.aclose()

    assert results == [True] * 8
    assert ticks >= 50


async def test_bcrypt_hash_uses_the_configured_cost(bcrypt_hasher: PasslibBcryptHasher) -> None:
    hashed = await bcrypt_hasher.hash(PASSWORD)

    assert hashed.startswith("$bcrypt-sha256$")
    assert f"r={FAST_ROUNDS}$" in hashed


async def test_bcrypt_flags_hashes_made_with_other_settings_for_rehash(
    bcrypt_hasher: PasslibBcryptHasher,
) -> None:
    own = await bcrypt_hasher.hash(PASSWORD)
    stronger = PasslibBcryptHasher(rounds=FAST_ROUNDS + 1, max_workers=1)
    try:
        assert bcrypt_hasher.needs_rehash(own) is False
        assert stronger.needs_rehash(own) is True
        assert bcrypt_hasher.needs_rehash("not-a-hash") is True
    finally:
        stronger.close()


async def test_bcrypt_refuses_work_after_closing() -> None:
    hasher = PasslibBcryptHasher(rounds=FAST_ROUNDS, max_workers=1)

    await hasher.aclose()

    with pytest.raises(RuntimeError):
        await hasher.hash(PASSWORD)


@pytest.mark.parametrize(("rounds", "max_workers"), [(3, 1), (32, 1), (4, 0)])
def test_bcrypt_refuses_impossible_settings(rounds: int, max_workers: int) -> None:
    with pytest.raises(ValueError, match="must be"):
        PasslibBcryptHasher(rounds=rounds, max_workers=max_workers)
