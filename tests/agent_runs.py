"""Driving a :class:`~parley.ports.agent.ChatAgent` in tests: collect a whole run, or run
it in a task of its own (as a chat turn does) and cancel it once the reply has begun."""

from __future__ import annotations

import asyncio
import contextlib

from parley.ports.agent import AgentEvent, AgentTurn, ChatAgent, TokenDelta


async def collect(
    agent: ChatAgent, turn: AgentTurn, into: list[AgentEvent] | None = None
) -> list[AgentEvent]:
    """Every event of one run, in order (``into`` keeps those of a run that raised)."""
    events = into if into is not None else []
    await agent.run(turn, events.append)
    return events


class RunningTurn:
    """One run in a task of its own; ``events`` grows as the agent emits."""

    def __init__(self, agent: ChatAgent, turn: AgentTurn) -> None:
        self.events: list[AgentEvent] = []
        self._text_started = asyncio.Event()
        self.task = asyncio.ensure_future(agent.run(turn, self._emit))

    def _emit(self, event: AgentEvent) -> None:
        self.events.append(event)
        if isinstance(event, TokenDelta):
            self._text_started.set()

    async def first_text(self, timeout: float = 5.0) -> TokenDelta:
        """The first piece of the reply (the run's error if it failed before any)."""
        waiter = asyncio.ensure_future(self._text_started.wait())
        done, _ = await asyncio.wait(
            {waiter, self.task}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
        waiter.cancel()
        if not self._text_started.is_set():
            if self.task in done:
                self.task.result()  # raises the run's error
            raise AssertionError(f"no text within {timeout} s")
        return next(e for e in self.events if isinstance(e, TokenDelta))

    async def cancel(self) -> None:
        """Cancel the run and wait until it has finished its clean-up."""
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
