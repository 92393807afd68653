"""The agent's part of a turn: a task of its own, its events, and how it is stopped.

Everything about the agent task's lifecycle lives here; :class:`~parley.application.chat.turns.Turn`
only relays events and stores the reply.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import replace
from typing import Any
from uuid import UUID

from parley.ports.agent import AgentEvent, AgentResume, AgentTurn, ChatAgent

# Recalls the user's facts relevant to a message (never raises: () when it cannot).
Recall = Callable[[UUID, str], Awaitable[tuple[str, ...]]]


class AgentInterrupted(Exception):
    """The run was stopped from outside (:meth:`AgentRun.interrupt`); ``error`` says why."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


class AgentRun:
    """The agent answering one turn, started at construction.

    - the agent runs in a task of its own, from the moment the run exists (its first steps
      overlap with the caller's), handing events to a queue. Cancelling *that* task is a
      plain, one-shot asyncio cancellation, so the agent's clean-up (closing the graph run
      and its upstream HTTP request, writing its memory) always completes, even when the
      consumer sits under a framework that re-cancels every await (anyio does);
    - :meth:`events` yields the agent's events as they come and ends when the agent returns;
      it raises what the agent raised, or :class:`AgentInterrupted` after :meth:`interrupt`;
    - :meth:`stop` and :meth:`interrupt` return once the agent has cleaned up;
    - with ``recall``, the user's long-term memories are recalled first, in the same task
      (overlapping the caller, like the agent's first steps), and handed over with the turn.
    """

    def __init__(self, agent: ChatAgent, turn: AgentTurn | AgentResume, recall: Recall | None = None) -> None:
        self._queue: asyncio.Queue[AgentEvent | BaseException | None] = asyncio.Queue()
        self._task = asyncio.ensure_future(self._run(agent, turn, recall))

    async def _run(self, agent: ChatAgent, turn: AgentTurn | AgentResume, recall: Recall | None) -> None:
        """Run (or resume) the agent with the queue as its sink, then queue None (the end) or its error.
        A resumed turn recalls by no message (the user's newest facts): it answers a decision."""
        try:
            if recall is not None:
                asked = turn.content if isinstance(turn, AgentTurn) else ""
                turn = replace(turn, memories=await recall(turn.user_id, asked))
            if isinstance(turn, AgentResume):
                await agent.resume(turn, self._queue.put_nowait)
            else:
                await agent.run(turn, self._queue.put_nowait)
        except Exception as error:
            self._queue.put_nowait(error)
        else:
            self._queue.put_nowait(None)

    async def events(self) -> AsyncGenerator[AgentEvent, None]:
        while (item := await self._queue.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item

    async def interrupt(self, error: Exception) -> None:
        """Stop the agent; :meth:`events` then raises :class:`AgentInterrupted` with ``error``
        (unless the agent had already finished: its events end as they were)."""
        if not self._task.done():
            self._task.cancel()
            self._queue.put_nowait(AgentInterrupted(error))
        await asyncio.wait({self._task})

    async def stop(self) -> None:
        """Stop the agent (idempotent)."""
        self._task.cancel()
        await asyncio.wait({self._task})


async def wait_through_cancellation(future: asyncio.Future[Any]) -> None:
    """Wait until ``future`` is done even if the waiter is cancelled meanwhile, once or many
    times; the cancellation is raised afterwards. For clean-ups that must finish before the
    caller moves on (storing a partial reply when a client leaves)."""
    cancelled: asyncio.CancelledError | None = None
    while not future.done():
        try:
            await asyncio.shield(future)
        except asyncio.CancelledError as cancellation:
            cancelled = cancellation
    if cancelled is not None:
        raise cancelled
