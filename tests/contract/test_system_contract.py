"""The ``Clock`` and ``IdGenerator`` contracts, for the fakes and the real adapters."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from uuid import UUID

import pytest

from parley.adapters.outbound.system import SystemClock, Uuid4Generator
from parley.ports.system import Clock, IdGenerator
from tests.fakes.system import FakeClock, SequentialIdGenerator

pytestmark = pytest.mark.contract

CLOCKS: dict[str, Callable[[], Clock]] = {"fake": FakeClock, "system": SystemClock}
ID_GENERATORS: dict[str, Callable[[], IdGenerator]] = {
    "sequential": SequentialIdGenerator,
    "uuid4": Uuid4Generator,
}


@pytest.fixture(params=list(CLOCKS))
def clock(request: pytest.FixtureRequest) -> Clock:
    return CLOCKS[request.param]()


@pytest.fixture(params=list(ID_GENERATORS))
def id_generator(request: pytest.FixtureRequest) -> IdGenerator:
    return ID_GENERATORS[request.param]()


def test_clock_tells_timezone_aware_utc(clock: Clock) -> None:
    now = clock.now()

    assert now.tzinfo is not None
    assert now.utcoffset() == timedelta(0)


def test_clock_never_goes_backwards_between_reads(clock: Clock) -> None:
    readings = [clock.now() for _ in range(200)]

    assert readings == sorted(readings)


def test_id_generator_never_repeats(id_generator: IdGenerator) -> None:
    ids = [id_generator.new_id() for _ in range(1000)]

    assert all(isinstance(minted, UUID) for minted in ids)
    assert len(set(ids)) == len(ids)


def test_system_clock_tells_the_current_time() -> None:
    before = datetime.now(UTC)
    now = SystemClock().now()
    after = datetime.now(UTC)

    assert before <= now <= after


def test_fake_clock_stays_put_until_advanced() -> None:
    start = datetime(2030, 5, 17, 8, 30, tzinfo=UTC)
    clock = FakeClock(start)

    assert clock.now() == start
    assert clock.advance(timedelta(minutes=15)) == start + timedelta(minutes=15)
    assert clock.now() == start + timedelta(minutes=15)


def test_fake_clock_converts_other_time_zones_to_utc() -> None:
    two_hours_east = timezone(timedelta(hours=2))

    now = FakeClock(datetime(2030, 6, 1, 14, 0, tzinfo=two_hours_east)).now()

    assert now == datetime(2030, 6, 1, 12, 0, tzinfo=UTC)
    assert now.tzinfo is UTC


def test_fake_clock_refuses_naive_start_and_going_backwards() -> None:
    with pytest.raises(ValueError, match="aware"):
        FakeClock(datetime(2030, 1, 1))
    with pytest.raises(ValueError, match="forward"):
        FakeClock().advance(timedelta(seconds=-1))


def test_sequential_ids_are_predictable() -> None:
    generator = SequentialIdGenerator()

    upcoming = generator.peek()
    first, second = generator.new_id(), generator.new_id()

    assert first == upcoming == UUID("00000000-0000-0000-0000-000000000001")
    assert second == UUID("00000000-0000-0000-0000-000000000002")
    assert SequentialIdGenerator(start=2).new_id() == second
