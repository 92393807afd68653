"""``PostgresMemoryStore``: the :class:`~parley.ports.memory.MemoryStore` port in LangGraph's
Postgres store (``AsyncPostgresStore``, langgraph-checkpoint-postgres).

Each user's facts live in the store's ``store`` table under the namespace
``("memories", str(user_id))`` (prefix ``memories.<user id>``), one item per fact keyed by
:func:`~parley.domain.memory.memory_id` (so a fact told twice is one item), value
``{"text": ...}``. Writes go through the store (which also embeds them when an index is
configured); reads and deletes the store's API cannot express (keyset pages, delete-and-report,
a full-text rank) are plain SQL on the same table.

Recall:
- with ``embeddings`` (``MEMORY_EMBEDDING_MODEL``): the store's semantic search (pgvector, exact
  distance within the user's namespace; the ``vector`` extension must be available: ``start``
  fails otherwise, naming it);
- without: PostgreSQL full-text search, no network: the user's facts ranked by ``ts_rank`` of
  their text (``'simple'`` configuration: no stemming, no stop words, any language) against the
  message's words OR-ed together, then the newest. The user's rows are found through the store's
  prefix index; a per-user set of stated facts is small, so no full-text index is needed to rank it.

Own small psycopg pool (never a connection of the caller); the tables are created at start under
an advisory lock, as the checkpointer's are. A connection that died with a database restart is
replaced and the operation (each is idempotent) run once more.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from uuid import UUID

import psycopg
from langchain_core.embeddings import Embeddings
from langgraph.store.base import PutOp, SearchItem, SearchOp
from langgraph.store.postgres.aio import AsyncPostgresStore
from langgraph.store.postgres.base import Migration, PostgresIndexConfig
from psycopg.rows import DictRow
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from pydantic import SecretStr

from parley.adapters.outbound.langgraph.checkpoints import postgres_pool, run_under_schema_lock
from parley.domain.memory import Memory, MemoryCursor, memory_id
from parley.ports.memory import MemoryPage
from parley.ports.persistence import StorageUnavailable

T = TypeVar("T")
NAMESPACE = "memories"
# pg_advisory_lock key serialising the store's schema set-up across processes ("parley-m").
STORE_SCHEMA_LOCK_KEY = 0x7061726C65792D6D
_UNREACHABLE = (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout)
_WORDS = re.compile(r"\w+")
_MAX_QUERY_WORDS = 32

_RECALL_SQL = """
SELECT key, value->>'text' AS text, created_at FROM store
WHERE prefix = %(prefix)s
ORDER BY ts_rank(to_tsvector('simple', value->>'text'), websearch_to_tsquery('simple', %(query)s)) DESC,
         created_at DESC, key DESC
LIMIT %(limit)s
"""
_NEWEST_SQL = """
SELECT key, value->>'text' AS text, created_at FROM store
WHERE prefix = %(prefix)s
  AND (%(after_at)s::timestamptz IS NULL OR (created_at, key) < (%(after_at)s, %(after_key)s))
ORDER BY created_at DESC, key DESC
LIMIT %(limit)s
"""


class ExactSearchPostgresStore(AsyncPostgresStore):
    """``AsyncPostgresStore`` whose set-up never builds an approximate (ANN) vector index.

    Its third vector migration builds that index unless the index kind is ``"flat"``, but
    ``setup()`` validates the migration's parameters before its condition, so ``"flat"`` fails
    with "Invalid index_type". Here that migration is a no-op (kept, so the version count stays
    upstream's). Entry 10 of ``docs/upstream-overrides.md``.
    """

    VECTOR_MIGRATIONS = [*AsyncPostgresStore.VECTOR_MIGRATIONS[:2], Migration("SELECT 1")]


@dataclass(frozen=True, slots=True)
class MemoryEmbeddings:
    """Semantic recall: the embedding model and its vector size (``dims``)."""

    model: Embeddings
    dims: int

    def index_config(self) -> PostgresIndexConfig:
        """Exact search ("flat": no approximate index). A search is always within one user's
        namespace, a few facts found through the vectors' primary key, where an approximate
        index over every user's vectors would only lose recall to its post-filtering."""
        return {
            "dims": self.dims,
            "embed": self.model,
            "fields": ["text"],
            "ann_index_config": {"kind": "flat"},
        }


def openai_embeddings(
    model: str, *, dims: int, api_key: str, base_url: str | None, timeout: float
) -> MemoryEmbeddings:
    """An embedding ``model`` on an OpenAI-compatible server, asked for ``dims``-sized vectors."""
    from langchain_openai import OpenAIEmbeddings  # only when configured: the SDK is slow to import

    embeddings = OpenAIEmbeddings(
        model=model,
        openai_api_key=SecretStr(api_key),
        openai_api_base=base_url,
        dimensions=dims,
        request_timeout=timeout,
    )
    return MemoryEmbeddings(model=embeddings, dims=dims)


def query_words(message: str) -> str | None:
    """``message``'s distinct words OR-ed for ``websearch_to_tsquery`` (which never fails on its
    input); None when it has none."""
    words = list(dict.fromkeys(word.casefold() for word in _WORDS.findall(message)))[:_MAX_QUERY_WORDS]
    return " or ".join(words) if words else None


def _prefix(user_id: UUID) -> str:
    return f"{NAMESPACE}.{user_id}"


def _memory(row: DictRow) -> Memory:
    return Memory(id=UUID(row["key"]), text=row["text"], created_at=row["created_at"])


class PostgresMemoryStore:
    """Users' facts in LangGraph's Postgres store (module docstring). ``start`` raises
    :class:`StorageUnavailable` when the database cannot be reached within ``connect_timeout``."""

    def __init__(
        self,
        postgres_url: str,
        *,
        embeddings: MemoryEmbeddings | None = None,
        pool_size: int = 4,
        pool_timeout: float = 5.0,
        connect_timeout: float = 10.0,
    ) -> None:
        self._url, self._embeddings = postgres_url, embeddings
        self._pool_size, self._pool_timeout, self._connect_timeout = pool_size, pool_timeout, connect_timeout
        self._pool: AsyncConnectionPool[psycopg.AsyncConnection[DictRow]] | None = None
        self._store: ExactSearchPostgresStore | None = None

    async def start(self) -> None:
        """Open the pool and create (or upgrade) the store's tables. Idempotent."""
        if self._store is not None:
            return
        pool = postgres_pool(self._url, self._pool_size, timeout=self._pool_timeout)
        index = self._embeddings.index_config() if self._embeddings is not None else None
        try:
            await pool.open(wait=True, timeout=self._connect_timeout)
            await run_under_schema_lock(
                pool, STORE_SCHEMA_LOCK_KEY, lambda conn: ExactSearchPostgresStore(conn, index=index).setup()
            )
        except (PoolTimeout, TimeoutError, psycopg.OperationalError) as error:
            await pool.close()
            raise StorageUnavailable("the memory store is unreachable") from error
        except psycopg.Error as error:
            await pool.close()
            needs = " (semantic recall needs the pgvector extension)" if index is not None else ""
            raise StorageUnavailable(
                f"the memory store's tables could not be set up{needs}: {error}"
            ) from error
        self._pool, self._store = pool, ExactSearchPostgresStore(pool, index=index)

    async def aclose(self) -> None:
        """Close the pool. Idempotent; ``start`` may follow."""
        self._store = None
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    async def remember(self, user_id: UUID, facts: Sequence[str]) -> None:
        namespace = (NAMESPACE, str(user_id))
        puts = {memory_id(user_id, fact): fact for fact in facts}  # one op per key in a batch
        ops = [PutOp(namespace, str(key), {"text": text}) for key, text in puts.items()]
        await self._retrying(lambda: self._require_store().abatch(ops))

    async def recall(self, user_id: UUID, query: str, *, limit: int) -> list[Memory]:
        if self._embeddings is not None:
            return await self._retrying(lambda: self._semantic(user_id, query, limit))
        words = query_words(query)
        if words is None:
            return (await self.list_page(user_id, limit=limit)).items
        rows = await self._fetch(_RECALL_SQL, {"prefix": _prefix(user_id), "query": words, "limit": limit})
        return [_memory(row) for row in rows]

    async def _semantic(self, user_id: UUID, query: str, limit: int) -> list[Memory]:
        op = SearchOp((NAMESPACE, str(user_id)), query=query, limit=limit)
        (found,) = await self._require_store().abatch([op])
        items = [item for item in found if isinstance(item, SearchItem)] if isinstance(found, list) else []
        return [Memory(id=UUID(i.key), text=str(i.value["text"]), created_at=i.created_at) for i in items]

    async def list_page(self, user_id: UUID, *, limit: int, after: MemoryCursor | None = None) -> MemoryPage:
        params: dict[str, Any] = {
            "prefix": _prefix(user_id),
            "after_at": after.created_at if after else None,
            "after_key": str(after.memory_id) if after else None,
            "limit": limit + 1,
        }
        items = [_memory(row) for row in await self._fetch(_NEWEST_SQL, params)]
        more = len(items) > limit
        return MemoryPage(items[:limit], MemoryCursor.after(items[limit - 1]) if more else None)

    async def forget(self, user_id: UUID, memory_id: UUID) -> bool:
        rows = await self._fetch(
            "DELETE FROM store WHERE prefix = %(prefix)s AND key = %(key)s RETURNING key",
            {"prefix": _prefix(user_id), "key": str(memory_id)},
        )
        return bool(rows)

    async def forget_all(self, user_id: UUID) -> None:
        await self._fetch("DELETE FROM store WHERE prefix = %(prefix)s", {"prefix": _prefix(user_id)})

    async def _fetch(self, sql: str, params: dict[str, Any]) -> list[DictRow]:
        async def run() -> list[DictRow]:
            async with self._require_pool().connection() as conn:
                cursor = await conn.execute(sql, params)
                return await cursor.fetchall() if cursor.description else []

        return await self._retrying(run)

    async def _retrying(self, operation: Callable[[], Awaitable[T]]) -> T:
        """Run ``operation``; after a dead connection (the database restarted), check the pool and
        run it once more; :class:`StorageUnavailable` when the database cannot be reached."""
        try:
            try:
                return await operation()
            except _UNREACHABLE:
                await self._require_pool().check()
                return await operation()
        except _UNREACHABLE as error:
            raise StorageUnavailable("the memory store is unreachable") from error

    def _require_pool(self) -> AsyncConnectionPool[psycopg.AsyncConnection[DictRow]]:
        if self._pool is None:
            raise RuntimeError("PostgresMemoryStore.start() was not awaited")
        return self._pool

    def _require_store(self) -> ExactSearchPostgresStore:
        if self._store is None:
            raise RuntimeError("PostgresMemoryStore.start() was not awaited")
        return self._store
