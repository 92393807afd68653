"""Auth sessions this process read from the database very recently.

Checking an access token reads its auth session (one primary-key read) to learn whether the
login was revoked. Under a burst (1,000 streams opened at once by a few users), that read was
the bottleneck: every request waited for a pooled connection just to learn what the previous
request had learnt a millisecond earlier, and most of them timed out with 503.

Contract of :class:`RecentAuthSessions`:
- a session read at most ``ttl`` seconds ago is answered from memory (revoked, active or
  missing alike); so a revocation made by *another* process is seen here within ``ttl``;
- concurrent look-ups of the same session wait for one database read (no stampede);
- a revocation made by *this* process is seen at once (:meth:`forget`, :meth:`forget_user`);
- a failed read is not remembered: the next look-up reads again;
- at most ``max_entries`` sessions are kept; ``ttl`` of 0 switches the cache off.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from uuid import UUID

from parley.domain.auth import AuthSession

DEFAULT_TTL_SECONDS = 1.0
DEFAULT_MAX_ENTRIES = 50_000


@dataclass(frozen=True, slots=True)
class _Entry:
    session: AuthSession | None
    read_at: float


class RecentAuthSessions:
    """Remembers auth-session reads for ``ttl`` seconds (see the module docstring)."""

    def __init__(
        self,
        ttl: float = DEFAULT_TTL_SECONDS,
        *,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl, self._max_entries, self._monotonic = ttl, max_entries, monotonic
        self._entries: dict[UUID, _Entry] = {}
        self._reading: dict[UUID, asyncio.Task[AuthSession | None]] = {}
        self._revisions = 0  # bumped by every forget: a read overtaken by one is not kept

    async def get(
        self, session_id: UUID, read: Callable[[], Awaitable[AuthSession | None]]
    ) -> AuthSession | None:
        """The session as read within the last ``ttl`` seconds, else as ``read()`` returns it now."""
        if self._ttl <= 0:
            return await read()
        entry = self._entries.get(session_id)
        if entry is not None and self._monotonic() - entry.read_at < self._ttl:
            return entry.session
        reading = self._reading.get(session_id)
        if reading is None:
            reading = asyncio.ensure_future(self._read(session_id, read, self._monotonic(), self._revisions))
            self._reading[session_id] = reading
            reading.add_done_callback(_retrieve_exception)
        # Shielded: one caller giving up (its client left) must not cancel the others' read.
        return await asyncio.shield(reading)

    async def _read(
        self,
        session_id: UUID,
        read: Callable[[], Awaitable[AuthSession | None]],
        started: float,
        revision: int,
    ) -> AuthSession | None:
        """Read, and remember the answer unless this process changed sessions since ``revision``."""
        try:
            session = await read()
        finally:
            del self._reading[session_id]
        if revision == self._revisions:
            self._remember(session_id, _Entry(session, started))
        return session

    def _remember(self, session_id: UUID, entry: _Entry) -> None:
        if len(self._entries) >= self._max_entries:
            now = self._monotonic()
            self._entries = {k: e for k, e in self._entries.items() if now - e.read_at < self._ttl}
            if len(self._entries) >= self._max_entries:
                self._entries.clear()
        self._entries[session_id] = entry

    def forget(self, *session_ids: UUID) -> None:
        """This process changed these sessions (revoked them): read them afresh next time."""
        self._revisions += 1
        for session_id in session_ids:
            self._entries.pop(session_id, None)

    def forget_user(self, user_id: UUID) -> None:
        """This process changed every session of a user (password change, account deleted)."""
        self.forget(*(key for key, e in self._entries.items() if e.session and e.session.user_id == user_id))


def _retrieve_exception(task: asyncio.Task[AuthSession | None]) -> None:
    """Every waiter may have given up: mark a failure as seen (the waiters still get it)."""
    if not task.cancelled():
        task.exception()
