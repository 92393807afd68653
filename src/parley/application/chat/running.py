"""What a chat turn leaves running, and how it is stopped or finished later.

- :class:`RunningTurns`: the turns running in *this* process, by conversation. Deleting or
  clearing a conversation stops its turn here first, so the model call ends at once and the
  agent has written its last checkpoint before the agent's memory is forgotten. A turn running
  in another process is not reachable from here: it notices when it tries to store its reply
  (the conversation is gone, or its history was cleared) and cleans up then.
- :class:`DeferredWrites`: writes that failed because the database was unreachable (storing a
  reply, freeing a conversation's reply slot), retried in the background until they succeed or
  their deadline passes, so a conversation is not left claimed once the database is back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Protocol
from uuid import UUID

from parley.application.background import BackgroundTasks
from parley.ports.persistence import StorageUnavailable

_log = logging.getLogger(__name__)


class Interruptible(Protocol):
    """A running turn, as :class:`RunningTurns` sees it."""

    @property
    def conversation_id(self) -> UUID: ...

    @property
    def owner_id(self) -> UUID: ...

    async def interrupt(self, error: Exception) -> None:
        """Stop the agent (its upstream request and checkpoint writes done) and end the turn's
        events with ``error``; return once the agent has stopped."""
        ...


class RunningTurns:
    """The turns running in this process. A turn adds itself when it starts, removes itself when done."""

    def __init__(self) -> None:
        # Usually one turn per conversation; two only if an expired claim was taken over.
        self._turns: dict[UUID, set[Interruptible]] = {}

    def add(self, turn: Interruptible) -> None:
        self._turns.setdefault(turn.conversation_id, set()).add(turn)

    def discard(self, turn: Interruptible) -> None:
        turns = self._turns.get(turn.conversation_id)
        if turns is not None:
            turns.discard(turn)
            if not turns:
                del self._turns[turn.conversation_id]

    def __len__(self) -> int:
        return sum(len(turns) for turns in self._turns.values())

    async def interrupt(self, conversation_ids: Iterable[UUID], *, owner_id: UUID, error: Exception) -> None:
        """Stop the owner's turns in these conversations (another user's are never touched)."""
        doomed = [
            turn
            for conversation_id in conversation_ids
            for turn in self._turns.get(conversation_id, ())
            if turn.owner_id == owner_id
        ]
        await asyncio.gather(*(turn.interrupt(error) for turn in doomed))

    async def interrupt_owner(self, owner_id: UUID, *, error: Exception) -> None:
        """Stop every turn of one user (their account is being deleted)."""
        await self.interrupt(list(self._turns), owner_id=owner_id, error=error)


class DeferredWrites:
    """Retries writes that met an unreachable database, in the background.

    - ``retry(write, within=…)`` runs ``write`` again after 0.25 s, then doubling up to
      ``max_delay``, while it raises :class:`StorageUnavailable`, for at most ``within`` seconds;
      any other error ends the retries (logged);
    - the tasks are held here (never garbage-collected mid-flight) and cancelled by
      :meth:`aclose` at shutdown; what was still pending is logged.
    """

    def __init__(self, *, first_delay: float = 0.25, max_delay: float = 5.0) -> None:
        self._first_delay, self._max_delay = first_delay, max_delay
        self._tasks: BackgroundTasks[None] = BackgroundTasks()

    def __len__(self) -> int:
        return len(self._tasks)

    def retry(self, write: Callable[[], Awaitable[object]], *, within: float, what: str) -> None:
        self._tasks.start(self._retry(write, within, what))

    async def idle(self) -> None:
        """Wait until every pending write has succeeded or given up (for tests and shutdown)."""
        await self._tasks.idle()

    async def aclose(self) -> None:
        if self._tasks:
            _log.warning("Shutting down with %d write(s) still waiting for the database", len(self._tasks))
        await self._tasks.cancel()

    async def _retry(self, write: Callable[[], Awaitable[object]], within: float, what: str) -> None:
        deadline, delay = time.monotonic() + within, self._first_delay
        while time.monotonic() + delay < deadline:
            await asyncio.sleep(delay)
            try:
                await write()
            except StorageUnavailable:
                delay = min(delay * 2, self._max_delay)
                continue
            except Exception:
                _log.exception("Gave up %s after an unexpected error", what)
                return
            _log.info("Database back: %s done", what)
            return
        _log.warning("Gave up %s: the database stayed unreachable for %.0f s", what, within)
