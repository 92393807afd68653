"""Where the agent's threads are checkpointed, and how a turn waits for its last writes.

Why the tracking: when a run is closed mid-step, LangGraph records the cancelled
node's writes from a done-callback *after* its executor has stopped waiting, so an
``aput_writes`` task outlives the run. Left alone it would keep a pool connection
busy after the stream closed, and could land after a ``forget`` (leaving rows of a
forgotten thread). Each saver here registers its writes per thread the moment they
are requested; :meth:`SettlingSaver.settle` waits for those of one thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, TypeVar

import psycopg
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver, ChannelVersions, Checkpoint, CheckpointMetadata
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool

T = TypeVar("T")
SETTLE_TIMEOUT = 5.0
# pg_advisory_lock key serialising checkpoint-schema migrations across processes ("parley-cp").
SCHEMA_LOCK_KEY = 0x7061726C65792D63


class SettlingSaver(BaseCheckpointSaver[str]):
    """Mixin: tracks in-flight checkpoint writes per thread (see the module docstring).

    The wrappers copy the savers' ``aput``/``aput_writes`` signatures: entry 7 of
    ``docs/upstream-overrides.md``.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_flight: dict[str, set[asyncio.Future[None]]] = {}

    def _track(self, config: RunnableConfig, work: Coroutine[Any, Any, T]) -> Coroutine[Any, Any, T]:
        """Register ``work`` now (synchronously), and unregister it when it ends."""
        thread_id = str(config.get("configurable", {}).get("thread_id", ""))
        marker: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._in_flight.setdefault(thread_id, set()).add(marker)

        async def tracked() -> T:
            try:
                return await work
            finally:
                marker.set_result(None)
                self._forget_marker(thread_id, marker)

        return tracked()

    def _forget_marker(self, thread_id: str, marker: asyncio.Future[None]) -> None:
        markers = self._in_flight.get(thread_id, set())
        markers.discard(marker)
        if not markers:
            # Drop empty entries: one per conversation ever seen would grow without bound.
            self._in_flight.pop(thread_id, None)

    async def settle(self, thread_id: str, timeout: float = SETTLE_TIMEOUT) -> None:
        """Wait (at most ``timeout`` seconds) for the thread's writes requested so far."""
        pending = set(self._in_flight.get(thread_id, ()))
        if pending:
            await asyncio.wait(pending, timeout=timeout)

    def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> Coroutine[Any, Any, RunnableConfig]:
        return self._track(config, super().aput(config, checkpoint, metadata, new_versions))

    def aput_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> Coroutine[Any, Any, None]:
        return self._track(config, super().aput_writes(config, writes, task_id, task_path))


class SettlingPostgresSaver(SettlingSaver, AsyncPostgresSaver):
    """``AsyncPostgresSaver`` on a pool, running operations concurrently; writes can be waited for.

    ``AsyncPostgresSaver`` runs every query of an instance behind one ``asyncio.Lock``: needed
    for a single shared connection, but it turns a pool into one connection (langgraph issue
    #7259). With 1,000 turns starting together, checkpoint reads queued for over a second.
    Each operation here takes a pool connection of its own, so the lock becomes a semaphore
    as wide as the pool: operations wait there instead of hitting the pool's timeout.
    ``lock`` is the saver's internal state: entry 6 of ``docs/upstream-overrides.md``.
    """

    def __init__(self, pool: AsyncConnectionPool[psycopg.AsyncConnection[DictRow]]) -> None:
        super().__init__(pool)
        self.lock = asyncio.Semaphore(pool.max_size)  # type: ignore[assignment]


class SettlingMemorySaver(SettlingSaver, InMemorySaver):
    """``InMemorySaver`` (this process only) whose writes can be waited for per thread."""


def libpq_url(url: str) -> str:
    """``url`` as libpq wants it: SQLAlchemy-style ``postgresql+psycopg://`` is accepted too."""
    scheme, separator, rest = url.partition("://")
    if separator and (scheme == "postgres" or scheme.startswith("postgresql+")):
        return f"postgresql://{rest}"
    return url


def postgres_pool(
    url: str, size: int, *, timeout: float = 5.0
) -> AsyncConnectionPool[psycopg.AsyncConnection[DictRow]]:
    """An unopened pool with the settings ``AsyncPostgresSaver`` documents.

    Autocommit (``setup()`` creates indexes concurrently), no server-side prepared
    statements (safe behind PgBouncer), dict rows (the saver reads columns by name).
    A connection is waited for at most ``timeout`` seconds (psycopg_pool's default, 30 s, held
    a turn that long when the database was down). Connections are not checked as they are lent
    (see ``LangGraphChatAgent._once_more_after_a_restart`` for what happens after a restart).
    """
    return AsyncConnectionPool(
        libpq_url(url),
        timeout=timeout,
        # Fixed size: psycopg_pool opens missing connections one at a time, so a burst of
        # turns on a pool that starts small queues behind its growth for seconds.
        min_size=size,
        max_size=size,
        open=False,
        kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row},
    )


async def migrate_checkpoint_schema(
    pool: AsyncConnectionPool[psycopg.AsyncConnection[DictRow]], *, lock_timeout: float = 60.0
) -> None:
    """Create or upgrade the checkpoint tables (``AsyncPostgresSaver.setup``), one process at a time.

    ``setup()`` is not safe to run concurrently (two workers starting together both
    insert migration 0 and fail), so it runs under a session advisory lock. The lock
    is polled with ``pg_try_advisory_lock`` because a session *blocked* in
    ``pg_advisory_lock`` holds a snapshot that the holder's ``CREATE INDEX
    CONCURRENTLY`` waits for: a deadlock.
    """
    await run_under_schema_lock(
        pool, SCHEMA_LOCK_KEY, lambda conn: AsyncPostgresSaver(conn).setup(), lock_timeout=lock_timeout
    )


async def run_under_schema_lock(
    pool: AsyncConnectionPool[psycopg.AsyncConnection[DictRow]],
    key: int,
    setup: Callable[[psycopg.AsyncConnection[DictRow]], Awaitable[None]],
    *,
    lock_timeout: float = 60.0,
) -> None:
    """Run ``setup`` on a pooled connection holding the session advisory lock ``key`` (polled:
    see :func:`migrate_checkpoint_schema`), released afterwards."""
    async with pool.connection() as conn:
        await _acquire_schema_lock(conn, key, lock_timeout)
        try:
            await setup(conn)
        finally:
            await conn.execute("SELECT pg_advisory_unlock(%s)", (key,))


async def _acquire_schema_lock(conn: psycopg.AsyncConnection[DictRow], key: int, timeout: float) -> None:
    async with asyncio.timeout(timeout):
        while True:
            cursor = await conn.execute("SELECT pg_try_advisory_lock(%s) AS locked", (key,))
            row = await cursor.fetchone()
            if row is not None and row["locked"]:
                return
            await asyncio.sleep(0.05)
