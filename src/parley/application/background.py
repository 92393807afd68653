"""Work the application runs in the background, held until it ends.

:class:`BackgroundTasks` keeps a strong reference to each task it starts (the event loop keeps
only weak ones: an unreferenced task can be garbage-collected mid-flight) and drops it when the task
ends; it can wait for them all, or cancel some or all and wait for them to end. Used by the chat's
deferred writes, titles, and long-term memory's learning jobs; their own bounds and logs stay theirs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterable
from typing import Any, Generic, TypeVar

OwnerT = TypeVar("OwnerT")


class BackgroundTasks(Generic[OwnerT]):
    """Tasks started with :meth:`start`, each with an optional ``owner`` (whom it works for)."""

    def __init__(self) -> None:
        self._tasks: dict[asyncio.Task[None], OwnerT | None] = {}

    def __len__(self) -> int:
        return len(self._tasks)

    def start(self, work: Coroutine[Any, Any, None], *, owner: OwnerT | None = None) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks[task] = owner
        task.add_done_callback(self._forget)
        return task

    def _forget(self, task: asyncio.Task[None]) -> None:
        self._tasks.pop(task, None)

    def owned_by(self, owner: OwnerT) -> list[asyncio.Task[None]]:
        return [task for task, whose in self._tasks.items() if whose == owner]

    async def idle(self) -> None:
        """Wait until every task (those started meanwhile too) has ended."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    async def cancel(self, tasks: Iterable[asyncio.Task[None]] | None = None) -> None:
        """Cancel ``tasks`` (all when None) and wait until they have ended."""
        chosen = list(self._tasks) if tasks is None else list(tasks)
        for task in chosen:
            task.cancel()
        await asyncio.gather(*chosen, return_exceptions=True)
