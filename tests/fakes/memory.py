"""In-memory doubles of the long-term memory ports."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from uuid import UUID

from parley.domain.memory import Memory, MemoryCursor, memory_id
from parley.ports.memory import MemoryPage
from parley.ports.persistence import StorageUnavailable

_WORDS = re.compile(r"\w+")


class InMemoryMemoryStore:
    """The :class:`~parley.ports.memory.MemoryStore` in a dict. Relevance: how many of the query's
    words a fact holds (as the Postgres adapter's full-text rank, roughly); ``unavailable`` makes
    every call raise :class:`StorageUnavailable`."""

    def __init__(self) -> None:
        self._memories: dict[UUID, dict[UUID, Memory]] = {}
        self._tick = datetime(2026, 1, 1, tzinfo=UTC)
        self.unavailable = False

    def _check(self) -> None:
        if self.unavailable:
            raise StorageUnavailable("memory store down (fake)")

    async def remember(self, user_id: UUID, facts: Sequence[str]) -> None:
        self._check()
        kept = self._memories.setdefault(user_id, {})
        for fact in facts:
            key = memory_id(user_id, fact)
            self._tick += timedelta(microseconds=1)  # strictly increasing, as no clock would be
            first = kept[key].created_at if key in kept else self._tick
            kept[key] = Memory(id=key, text=fact, created_at=first)

    def _newest_first(self, user_id: UUID) -> list[Memory]:
        return sorted(
            self._memories.get(user_id, {}).values(), key=lambda m: (m.created_at, str(m.id)), reverse=True
        )

    async def recall(self, user_id: UUID, query: str, *, limit: int) -> list[Memory]:
        self._check()
        words = {w.casefold() for w in _WORDS.findall(query)}

        def matches(memory: Memory) -> int:
            return len(words & {w.casefold() for w in _WORDS.findall(memory.text)})

        ranked = sorted(self._newest_first(user_id), key=matches, reverse=True)  # stable: newest next
        return ranked[:limit]

    async def list_page(self, user_id: UUID, *, limit: int, after: MemoryCursor | None = None) -> MemoryPage:
        self._check()
        items = self._newest_first(user_id)
        if after is not None:
            items = [m for m in items if (m.created_at, str(m.id)) < (after.created_at, str(after.memory_id))]
        more = len(items) > limit
        return MemoryPage(items[:limit], MemoryCursor.after(items[limit - 1]) if more else None)

    async def forget(self, user_id: UUID, memory_id: UUID) -> bool:
        self._check()
        return self._memories.get(user_id, {}).pop(memory_id, None) is not None

    async def forget_all(self, user_id: UUID) -> None:
        self._check()
        self._memories.pop(user_id, None)


class ScriptedFactExtractor:
    """Answers every call with ``facts`` (after waiting for ``gate`` when set); raises ``error``
    when set. Records the messages of each call."""

    def __init__(self, facts: Sequence[str] = (), *, error: Exception | None = None) -> None:
        self.facts, self.error = list(facts), error
        self.seen: list[list[str]] = []
        self.gate: asyncio.Event | None = None

    async def extract(self, messages: Sequence[str]) -> list[str]:
        self.seen.append(list(messages))
        if self.gate is not None:
            await self.gate.wait()
        if self.error is not None:
            raise self.error
        return list(self.facts)
