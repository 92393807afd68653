"""Long-term memory ports: where a user's facts are kept, and what finds facts in a turn."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol
from uuid import UUID

from parley.domain.memory import Memory, MemoryCursor


@dataclass(frozen=True, slots=True)
class MemoryPage:
    """``items`` newest first; ``next_cursor`` fetches the older ones (None: no more)."""

    items: list[Memory]
    next_cursor: MemoryCursor | None


class MemoryStore(Protocol):
    """Each user's remembered facts, kept apart per user (one namespace each).

    Contract:
    - ``remember`` keeps each fact (already cleaned: :func:`parley.domain.memory.memory_text`)
      under :func:`parley.domain.memory.memory_id`: a fact told again stays one memory, with
      its first ``created_at``;
    - ``recall`` returns at most ``limit`` of the user's facts, the most relevant to ``query``
      first (an implementation's own measure: full-text rank or embedding distance), then the
      newest; never another user's;
    - ``list_page`` pages the user's memories newest first (ties by id), from after ``after``;
    - ``forget`` deletes one memory of the user: False when the user has no such memory;
    - ``forget_all`` deletes every memory of the user (idempotent);
    - every method raises ``parley.ports.persistence.StorageUnavailable`` when the store
      cannot be reached.
    """

    async def remember(self, user_id: UUID, facts: Sequence[str]) -> None: ...

    async def recall(self, user_id: UUID, query: str, *, limit: int) -> list[Memory]: ...

    async def list_page(
        self, user_id: UUID, *, limit: int, after: MemoryCursor | None = None
    ) -> MemoryPage: ...

    async def forget(self, user_id: UUID, memory_id: UUID) -> bool: ...

    async def forget_all(self, user_id: UUID) -> None: ...


class FactExtractor(Protocol):
    """Finds the facts a user stated about themselves in their ``messages`` (oldest first).

    The answer is a list of suggestions: the caller cleans and bounds each one
    (:func:`parley.domain.memory.memory_text`). Any exception means no facts; the caller bounds
    the time it waits.
    """

    async def extract(self, messages: Sequence[str]) -> list[str]: ...
