"""A scripted double of the :class:`~parley.ports.titles.TitleWriter` port."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field


@dataclass
class ScriptedTitleWriter:
    """Answers ``answer`` (or raises ``error``); with ``gate`` set, only once the gate is open.

    Without a gate it answers without waiting, as the offline writer does. Every call is recorded
    in ``calls``; ``cancelled`` counts the calls cancelled while they waited at the gate.
    """

    answer: str = "A fine title"
    error: Exception | None = None
    gate: asyncio.Event | None = None
    calls: list[tuple[str, str]] = field(default_factory=list)
    cancelled: int = 0

    async def suggest(self, first_message: str, reply: str) -> str:
        self.calls.append((first_message, reply))
        if self.gate is not None:
            try:
                await self.gate.wait()
            except asyncio.CancelledError:
                self.cancelled += 1
                raise
        if self.error is not None:
            raise self.error
        return self.answer
