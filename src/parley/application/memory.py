"""Long-term memory per user: facts recalled into later turns, learnt after each turn, and the
caller's own view of them (list, forget one, forget all).

How a turn uses it (:class:`UserMemory`, held by the turn's services):

- before the agent runs, inside the agent's own task (so it overlaps the caller's work), the
  user's facts most relevant to the new message are recalled and handed to the agent with the
  turn (``AgentTurn.memories``); a failure or a slow store (over ``recall_timeout``) is logged
  and the turn goes on without them;
- once a reply is stored complete, a background job asks the
  :class:`~parley.ports.memory.FactExtractor` for the facts the user stated, within ``timeout``
  seconds, and keeps them (:meth:`~parley.ports.memory.MemoryStore.remember`). The reply is
  never held back for it. The job waits ``delay`` seconds first, gathering the conversation's
  next messages answered meanwhile (each pushes the wait back): quick turns cost one extraction
  (one model request) instead of one each, and the model sees them together.

Bounded: at most ``max_pending`` jobs at once (one per conversation being learnt from); another
is dropped (counted in ``dropped``, logged for the first and every hundredth). A failure (the
model, a timeout, the store) is logged and swallowed. The jobs are held here (never
garbage-collected mid-flight) and cancelled by :meth:`UserMemory.aclose` at shutdown (what they
gathered is not learnt), or by :meth:`UserMemory.erase` for an erased user.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from uuid import UUID

from parley.application.background import BackgroundTasks
from parley.application.principal import Principal
from parley.domain.errors import MemoryNotFound
from parley.domain.memory import Memory, MemoryCursor, memory_text
from parley.ports.memory import FactExtractor, MemoryStore

_log = logging.getLogger(__name__)
MAX_FACTS_PER_TURN = 10
MAX_GATHERED_MESSAGES = 20  # per job: a conversation's quick turns, not a whole history


class _Gathered:
    """A learning job's messages (the newest :data:`MAX_GATHERED_MESSAGES`) and when it runs."""

    def __init__(self, user_id: UUID, conversation_id: UUID, message: str, *, due: float) -> None:
        self.user_id, self.conversation_id, self.due = user_id, conversation_id, due
        self.messages = [message]

    def add(self, message: str, *, due: float) -> None:
        self.messages = [*self.messages, message][-MAX_GATHERED_MESSAGES:]
        self.due = due


class UserMemory:
    """Recalls a user's facts for a turn and learns new ones in the background (module docstring)."""

    def __init__(
        self,
        store: MemoryStore,
        extractor: FactExtractor,
        *,
        recall_limit: int = 5,
        delay: float = 10.0,
        max_pending: int = 64,
        timeout: float = 20.0,
        recall_timeout: float = 2.0,
    ) -> None:
        self._store, self._extractor = store, extractor
        self._recall_limit, self._delay, self._max_pending = recall_limit, delay, max_pending
        self._timeout, self._recall_timeout = timeout, recall_timeout
        self._tasks: BackgroundTasks[UUID] = BackgroundTasks()  # each job's user
        self._gathering: dict[UUID, _Gathered] = {}  # per conversation: the job still gathering
        self.dropped = 0  # jobs skipped because ``max_pending`` were running

    def __len__(self) -> int:
        return len(self._tasks)

    async def recall(self, user_id: UUID, message: str) -> tuple[str, ...]:
        """The texts of the user's facts most relevant to ``message``; () when the store fails or
        is slow (logged): memory enriches a turn, it never fails one."""
        try:
            async with asyncio.timeout(self._recall_timeout):
                found = await self._store.recall(user_id, message, limit=self._recall_limit)
        except Exception:
            _log.warning("Could not recall the memories of user %s", user_id, exc_info=True)
            return ()
        return tuple(memory.text for memory in found)

    def learn(self, user_id: UUID, conversation_id: UUID, message: str) -> None:
        """Learn from ``message`` (a user's message answered in full) in the background: within
        ``delay`` seconds of the conversation's last such message, one job extracts the facts of
        every message it gathered (a conversation's quick turns cost one extraction). A new job is
        dropped when ``max_pending`` are running."""
        pending = self._gathering.get(conversation_id)
        if pending is not None:
            pending.add(message, due=self._due())
            return
        if len(self._tasks) >= self._max_pending:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 100 == 0:  # a burst logs a line, not one per turn
                _log.warning(
                    "Not learning from a turn of user %s: %d memory jobs are running (%d skipped so far)",
                    user_id,
                    len(self._tasks),
                    self.dropped,
                )
            return
        job = _Gathered(user_id, conversation_id, message, due=self._due())
        self._gathering[conversation_id] = job
        self._tasks.start(self._learn(job), owner=user_id)

    def _due(self) -> float:
        return asyncio.get_running_loop().time() + self._delay

    async def _learn(self, job: _Gathered) -> None:
        try:
            loop = asyncio.get_running_loop()
            # A deadline that newer messages push back, not an event: nothing signals "quiet".
            while (wait := job.due - loop.time()) > 0:  # noqa: ASYNC110
                await asyncio.sleep(wait)
        finally:
            if self._gathering.get(job.conversation_id) is job:
                del self._gathering[job.conversation_id]  # a later message starts a new job
        try:
            async with asyncio.timeout(self._timeout):
                raw = await self._extractor.extract(job.messages)
                facts = list(dict.fromkeys(f for text in raw if (f := memory_text(text)) is not None))
                if facts:
                    await self._store.remember(job.user_id, facts[:MAX_FACTS_PER_TURN])
        except TimeoutError:
            _log.warning("No memories kept for user %s within %.0f s", job.user_id, self._timeout)
        except Exception:
            _log.warning("Could not keep the memories of user %s", job.user_id, exc_info=True)

    async def erase(self, user_id: UUID) -> None:
        """Stop the user's running jobs in this process, then forget all their memories."""
        await self._tasks.cancel(self._tasks.owned_by(user_id))
        await self._store.forget_all(user_id)

    async def idle(self) -> None:
        """Wait until every job has ended (for tests and benchmarks)."""
        await self._tasks.idle()

    async def aclose(self) -> None:
        """Cancel the pending jobs (at shutdown) and wait for them to end."""
        if self._tasks:
            _log.info("Shutting down with %d memory job(s) still running", len(self._tasks))
        await self._tasks.cancel()


@dataclass(frozen=True, slots=True)
class MemoryList:
    items: list[Memory]
    next_cursor: str | None


class ListMemories:
    """The caller's memories, newest first, by keyset pages; ``cursor`` is the previous page's
    opaque ``next_cursor`` (a forged one is a validation error on field ``cursor``)."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store

    async def execute(self, principal: Principal, *, limit: int, cursor: str | None = None) -> MemoryList:
        after = MemoryCursor.decode(cursor) if cursor else None
        page = await self._store.list_page(principal.user_id, limit=limit, after=after)
        return MemoryList(page.items, page.next_cursor.encode() if page.next_cursor else None)


class ForgetMemory:
    """Forget one of the caller's memories; :class:`MemoryNotFound` when they have no such one
    (another user's memory included)."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store

    async def execute(self, principal: Principal, memory_id: UUID) -> None:
        if not await self._store.forget(principal.user_id, memory_id):
            raise MemoryNotFound()


class ForgetAllMemories:
    """Forget every memory of the caller, stopping what is being learnt from their turns now
    (in this process). Idempotent."""

    def __init__(self, memory: UserMemory) -> None:
        self._memory = memory

    async def execute(self, principal: Principal) -> None:
        await self._memory.erase(principal.user_id)
