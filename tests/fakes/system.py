"""Deterministic doubles of the ``Clock`` and ``IdGenerator`` ports."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

DEFAULT_START = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


class FakeClock:
    """A clock that only moves when told to.

    - ``now()`` is timezone-aware UTC and stays put between calls;
    - ``advance(delta)`` moves it forward (never backwards: the real clock never does either).
    """

    def __init__(self, start: datetime | None = None) -> None:
        start = DEFAULT_START if start is None else start
        if start.tzinfo is None or start.utcoffset() is None:
            raise ValueError("FakeClock needs a timezone-aware start")
        self._now = start.astimezone(UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> datetime:
        """Move the clock forward by ``delta`` and return the new time."""
        if delta < timedelta(0):
            raise ValueError("FakeClock only moves forward")
        self._now += delta
        return self._now


class SequentialIdGenerator:
    """Mints ``00000000-0000-0000-0000-000000000001``, ``…002``, … in order.

    Predictable ids make test expectations readable; they never repeat.
    """

    def __init__(self, start: int = 1) -> None:
        if start < 0:
            raise ValueError("ids start at 0 or above")
        self._next = start

    def new_id(self) -> UUID:
        minted = UUID(int=self._next)
        self._next += 1
        return minted

    def peek(self) -> UUID:
        """The id the next ``new_id()`` call will return, without consuming it."""
        return UUID(int=self._next)
