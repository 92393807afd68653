"""Long-term memory: facts a user stated about themselves, kept across their conversations."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID, uuid5

from parley.domain.chat import storable_text
from parley.domain.paging import decode_position, encode_position

MAX_MEMORY_CHARS = 300
# Control characters and line breaks in a fact become spaces (a fact is one line of a prompt).
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_DECORATION = " \"'`*-\u2022\u201c\u201d\u2018\u2019"


def memory_text(raw: str) -> str | None:
    """A fact as it is kept: one line, storable (:func:`storable_text`), spaces collapsed, quotes,
    bullets and a final full stop stripped, at most :data:`MAX_MEMORY_CHARS` characters (cut at a
    space when it can); None when nothing is left. Facts come from a model or a pattern, never
    typed as such by a user, so they are cleaned, not refused."""
    text = " ".join(storable_text(_CONTROLS.sub(" ", raw)).split())
    text = text.strip(_DECORATION).rstrip(".").strip(_DECORATION)
    if len(text) > MAX_MEMORY_CHARS:
        cut = text[: MAX_MEMORY_CHARS + 1]
        space = cut.rfind(" ")
        text = (cut[:space] if space > 0 else cut[:MAX_MEMORY_CHARS]).rstrip()
    return text or None


def memory_id(user_id: UUID, text: str) -> UUID:
    """The id of ``text`` among ``user_id``'s memories: the same fact, told again in any case or
    spacing, has the same id, so remembering it twice keeps one memory (deduplication by key)."""
    return uuid5(user_id, " ".join(text.casefold().split()))


@dataclass(frozen=True, slots=True)
class Memory:
    """One remembered fact (``text`` as :func:`memory_text` cleaned it)."""

    id: UUID
    text: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class MemoryCursor:
    """Keyset position in a user's memories (newest first); encoded as an opaque string."""

    created_at: datetime
    memory_id: UUID

    def encode(self) -> str:
        return encode_position(self.created_at, self.memory_id)

    @classmethod
    def decode(cls, token: str, *, field: str = "cursor") -> MemoryCursor:
        return cls(*decode_position(token, field=field))

    @classmethod
    def after(cls, memory: Memory) -> MemoryCursor:
        return cls(memory.created_at, memory.id)
