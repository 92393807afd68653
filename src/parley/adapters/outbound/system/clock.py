"""The wall clock behind the ``Clock`` port."""

from __future__ import annotations

from datetime import UTC, datetime


class SystemClock:
    """``datetime.now(UTC)``: always timezone-aware UTC.

    It is the wall clock, not a monotonic one: an NTP step can move it backwards, so use it
    for timestamps and expiries, never to measure durations.
    """

    def now(self) -> datetime:
        return datetime.now(UTC)
