"""The LangGraph Postgres memory store's set-up on a real PostgreSQL: twice is harmless, and
semantic recall (pgvector) either works or refuses to start with a clear reason."""

from __future__ import annotations

import os
import zlib
from collections.abc import Callable
from uuid import uuid4

import psycopg
import pytest
from langchain_core.embeddings import Embeddings

from parley.adapters.outbound.langgraph.memory_store import MemoryEmbeddings, PostgresMemoryStore
from parley.ports.persistence import StorageUnavailable

pytestmark = pytest.mark.integration


class WordCounts(Embeddings):
    """A local embedding: each word (hashed) counts in one of ``size`` dimensions."""

    def __init__(self, size: int = 16) -> None:
        self.size = size

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self.embed_query(text) for text in texts]

    def embed_query(self, text: str) -> list[float]:
        vector = [0.0] * self.size
        for word in text.casefold().split():
            vector[zlib.crc32(word.encode()) % self.size] += 1.0
        return vector


@pytest.fixture(scope="module")
def database_url(create_database: Callable[[], str]) -> str:
    return create_database()


def has_pgvector(url: str) -> bool:
    with psycopg.connect(url) as conn:
        return (
            conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'").fetchone() is not None
        )


async def test_starting_twice_and_two_stores_at_once_is_harmless(database_url: str) -> None:
    first, second = PostgresMemoryStore(database_url), PostgresMemoryStore(database_url)
    await first.start()
    await first.start()
    await second.start()
    user = uuid4()
    try:
        await first.remember(user, ["The user likes tea"])
        assert [m.text for m in await second.recall(user, "tea", limit=5)] == ["The user likes tea"]
    finally:
        await first.aclose()
        await second.aclose()


async def test_an_unreachable_database_is_storage_unavailable() -> None:
    store = PostgresMemoryStore("postgresql://nobody@127.0.0.1:9/none", connect_timeout=0.5)
    with pytest.raises(StorageUnavailable):
        await store.start()


async def test_semantic_recall_uses_pgvector_or_says_it_is_missing(database_url: str) -> None:
    embeddings = MemoryEmbeddings(model=WordCounts(), dims=16)
    store = PostgresMemoryStore(database_url, embeddings=embeddings)
    if not has_pgvector(database_url):
        with pytest.raises(StorageUnavailable, match="pgvector"):
            await store.start()
        return
    if not os.environ.get("PARLEY_TEST_PGVECTOR"):
        # The embedded PostgreSQL ships pgvector 0.8.2, but on the development VM a vector search
        # kills its backend with signal 4 (Illegal instruction: the wheel's pgvector is built for
        # CPU instructions that VM lacks), and the machine's PostgreSQL 15 has no pgvector package:
        # run this branch only against a PostgreSQL known to have a working pgvector.
        pytest.skip("pgvector is available but unverified here: set PARLEY_TEST_PGVECTOR=1 to run")
    await store.start()
    user = uuid4()
    try:
        await store.remember(user, ["The user likes tea", "The user lives in Porto"])
        await store.remember(uuid4(), ["The user likes tea"])
        found = await store.recall(user, "The user likes tea", limit=1)
        assert [m.text for m in found] == ["The user likes tea"]  # the same text, the same vector
        assert [m.text for m in await store.recall(user, "The user lives in Porto", limit=1)] == [
            "The user lives in Porto"
        ]
    finally:
        await store.aclose()
