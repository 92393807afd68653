"""Time and identity: injected so the core stays deterministic under test."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol
from uuid import UUID


class Clock(Protocol):
    """Tells the current time. Contract: always timezone-aware UTC."""

    def now(self) -> datetime: ...


class IdGenerator(Protocol):
    """Mints identifiers. Contract: never repeats within a process's lifetime."""

    def new_id(self) -> UUID: ...
