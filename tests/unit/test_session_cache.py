"""RecentAuthSessions, and the token check that uses it: a burst of requests of one login costs
one database read per second; a revocation made here counts at once, one made elsewhere within
the cache's lifetime."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest

from parley.adapters.outbound.jwt.issuer import PyJwtTokenIssuer
from parley.application.auth import Authenticate, LogIn, LogInInput, LogOut, RegisterInput, RegisterUser
from parley.application.principal import Principal
from parley.application.session_cache import RecentAuthSessions
from parley.application.users import ChangePassword, ChangePasswordInput
from parley.domain.auth import AuthSession
from parley.domain.errors import NotAuthenticated
from parley.ports.persistence import StorageUnavailable
from tests.fakes.persistence import InMemoryDatabase, InMemoryUnitOfWork
from tests.fakes.security import FakePasswordHasher
from tests.fakes.system import FakeClock, SequentialIdGenerator

pytestmark = pytest.mark.unit

T0 = datetime(2026, 1, 1, tzinfo=UTC)
PASSWORD = "Str0ng!Passw0rd"


class ManualClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def a_session(user_id: UUID | None = None) -> AuthSession:
    return AuthSession(
        id=uuid4(),
        user_id=user_id or uuid4(),
        refresh_token_id=uuid4(),
        created_at=T0,
        expires_at=T0 + timedelta(days=1),
    )


class CountingReads:
    """A read function that returns ``session`` (or raises ``error``) and counts its calls."""

    def __init__(self, session: AuthSession | None, *, error: Exception | None = None) -> None:
        self.session, self.error, self.calls = session, error, 0
        self.gate = asyncio.Event()
        self.gate.set()

    async def __call__(self) -> AuthSession | None:
        self.calls += 1
        await self.gate.wait()
        if self.error is not None:
            raise self.error
        return self.session


async def test_a_session_read_within_the_ttl_is_not_read_again() -> None:
    clock = ManualClock()
    cache = RecentAuthSessions(ttl=1.0, monotonic=clock)
    session = a_session()
    read = CountingReads(session)

    first = await cache.get(session.id, read)
    clock.now += 0.9
    second = await cache.get(session.id, read)
    clock.now += 0.2  # 1.1 s after the read
    third = await cache.get(session.id, read)

    assert first is second is third is session
    assert read.calls == 2


async def test_concurrent_lookups_of_one_session_share_one_read() -> None:
    cache = RecentAuthSessions(ttl=1.0)
    session = a_session()
    read = CountingReads(session)
    read.gate.clear()

    lookups = [asyncio.create_task(cache.get(session.id, read)) for _ in range(50)]
    await asyncio.sleep(0)
    read.gate.set()

    assert await asyncio.gather(*lookups) == [session] * 50
    assert read.calls == 1


async def test_a_failed_read_reaches_every_waiter_and_is_not_remembered() -> None:
    cache = RecentAuthSessions(ttl=1.0)
    session_id = uuid4()
    failing = CountingReads(None, error=StorageUnavailable("down"))
    failing.gate.clear()

    lookups = [asyncio.create_task(cache.get(session_id, failing)) for _ in range(3)]
    await asyncio.sleep(0)
    failing.gate.set()
    results = await asyncio.gather(*lookups, return_exceptions=True)

    assert all(isinstance(result, StorageUnavailable) for result in results)
    working = CountingReads(None)
    assert await cache.get(session_id, working) is None
    assert working.calls == 1


async def test_a_waiter_giving_up_does_not_cancel_the_read_of_the_others() -> None:
    cache = RecentAuthSessions(ttl=1.0)
    session = a_session()
    read = CountingReads(session)
    read.gate.clear()
    impatient = asyncio.create_task(cache.get(session.id, read))
    patient = asyncio.create_task(cache.get(session.id, read))
    await asyncio.sleep(0)

    impatient.cancel()
    read.gate.set()

    assert await patient is session
    assert impatient.cancelled()


async def test_forgetting_a_session_makes_the_next_lookup_read_it() -> None:
    cache = RecentAuthSessions(ttl=60.0)
    session = a_session()
    read = CountingReads(session)
    await cache.get(session.id, read)

    cache.forget(session.id)
    await cache.get(session.id, read)

    assert read.calls == 2


async def test_forgetting_a_user_forgets_all_their_sessions_and_no_one_elses() -> None:
    cache = RecentAuthSessions(ttl=60.0)
    user_id = uuid4()
    theirs, also_theirs, someone_elses = a_session(user_id), a_session(user_id), a_session()
    reads = {s.id: CountingReads(s) for s in (theirs, also_theirs, someone_elses)}
    for session_id, read in reads.items():
        await cache.get(session_id, read)

    cache.forget_user(user_id)
    for session_id, read in reads.items():
        await cache.get(session_id, read)

    assert [read.calls for read in reads.values()] == [2, 2, 1]


async def test_a_read_overtaken_by_a_revocation_here_is_not_remembered() -> None:
    cache = RecentAuthSessions(ttl=60.0)
    session = a_session()
    read = CountingReads(session)
    read.gate.clear()
    in_flight = asyncio.create_task(cache.get(session.id, read))
    await asyncio.sleep(0)

    cache.forget(session.id)  # this process revoked it while the read was under way
    read.gate.set()
    await in_flight
    await cache.get(session.id, read)

    assert read.calls == 2


async def test_a_full_cache_keeps_working() -> None:
    clock = ManualClock()
    cache = RecentAuthSessions(ttl=1.0, max_entries=3, monotonic=clock)
    sessions = [a_session() for _ in range(5)]

    for session in sessions:
        assert await cache.get(session.id, CountingReads(session)) is session

    read = CountingReads(sessions[-1])
    assert await cache.get(sessions[-1].id, read) is sessions[-1]
    assert read.calls == 0  # the newest entry survived the clean-up


async def test_a_zero_ttl_reads_every_time() -> None:
    cache = RecentAuthSessions(ttl=0)
    session = a_session()
    read = CountingReads(session)

    for _ in range(3):
        await cache.get(session.id, read)

    assert read.calls == 3


# ---------------------------------------------------------------- the token check


class CountingDatabase(InMemoryDatabase):
    """Counts the units of work opened on it."""

    def __init__(self) -> None:
        super().__init__()
        self.opened = 0

    def unit_of_work(self) -> InMemoryUnitOfWork:
        self.opened += 1
        return super().unit_of_work()


async def signed_in(db: InMemoryDatabase, clock: FakeClock, issuer: PyJwtTokenIssuer) -> str:
    ids, hasher = SequentialIdGenerator(), FakePasswordHasher()
    await RegisterUser(db.unit_of_work, hasher, clock, ids).execute(
        RegisterInput("ada@example.com", PASSWORD)
    )
    _, pair = await LogIn(db.unit_of_work, hasher, issuer, clock, ids).execute(
        LogInInput("ada@example.com", PASSWORD)
    )
    return pair.access_token


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def issuer(clock: FakeClock) -> PyJwtTokenIssuer:
    return PyJwtTokenIssuer(
        "x" * 48, access_ttl=timedelta(hours=1), refresh_ttl=timedelta(days=30), clock=clock
    )


async def test_a_burst_of_token_checks_of_one_login_reads_its_session_once(
    clock: FakeClock, issuer: PyJwtTokenIssuer
) -> None:
    db = CountingDatabase()
    token = await signed_in(db, clock, issuer)
    authenticate = Authenticate(db.unit_of_work, issuer, clock, RecentAuthSessions(ttl=1.0))
    before = db.opened

    principals = await asyncio.gather(*(authenticate.execute(token) for _ in range(100)))

    assert len({p.session_id for p in principals}) == 1
    assert db.opened - before == 1


async def test_a_logout_here_counts_at_once_and_elsewhere_within_the_ttl(
    clock: FakeClock, issuer: PyJwtTokenIssuer
) -> None:
    db = InMemoryDatabase()
    token = await signed_in(db, clock, issuer)
    monotonic = ManualClock()
    here, elsewhere = RecentAuthSessions(ttl=1.0), RecentAuthSessions(ttl=1.0, monotonic=monotonic)
    principal = await Authenticate(db.unit_of_work, issuer, clock, here).execute(token)
    await Authenticate(db.unit_of_work, issuer, clock, elsewhere).execute(token)

    await LogOut(db.unit_of_work, issuer, clock, here).execute(principal)

    with pytest.raises(NotAuthenticated):
        await Authenticate(db.unit_of_work, issuer, clock, here).execute(token)
    await Authenticate(db.unit_of_work, issuer, clock, elsewhere).execute(token)  # still trusted
    monotonic.now += 1.0
    with pytest.raises(NotAuthenticated):
        await Authenticate(db.unit_of_work, issuer, clock, elsewhere).execute(token)


async def test_a_password_change_here_revokes_the_other_logins_at_once(
    clock: FakeClock, issuer: PyJwtTokenIssuer
) -> None:
    db = InMemoryDatabase()
    first = await signed_in(db, clock, issuer)
    ids, hasher = SequentialIdGenerator(start=1000), FakePasswordHasher()
    _, second = await LogIn(db.unit_of_work, hasher, issuer, clock, ids).execute(
        LogInInput("ada@example.com", PASSWORD)
    )
    cache = RecentAuthSessions(ttl=60.0)
    authenticate = Authenticate(db.unit_of_work, issuer, clock, cache)
    caller: Principal = await authenticate.execute(second.access_token)
    await authenticate.execute(first)

    change = ChangePassword(db.unit_of_work, hasher, clock, sessions=cache)
    await change.execute(caller, ChangePasswordInput(PASSWORD, "An0ther!Passw0rd"))

    with pytest.raises(NotAuthenticated):
        await authenticate.execute(first)
    assert await authenticate.execute(second.access_token) == caller
