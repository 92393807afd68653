"""The LangGraph Postgres memory store's set-up on a real PostgreSQL: twice is harmless, and
semantic recall (pgvector) works where pgvector does, and refuses to start, with a clear
reason, where it is missing."""

from __future__ import annotations

import os
import subprocess
import zlib
from collections.abc import Callable, Iterator
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


NO_PGVECTOR = (
    "no PostgreSQL with a working pgvector: set PARLEY_TEST_PGVECTOR_URL to one, or "
    "PARLEY_TEST_PGVECTOR_PYTHON to a Python with the `pgserver` wheel (.ci/run makes one)"
)
# Started by PARLEY_TEST_PGVECTOR_PYTHON: prints its URL, serves until its stdin closes.
_SERVE_PGVECTOR = """
import sys, tempfile, pgserver
server = pgserver.get_server(tempfile.mkdtemp(prefix="parley-pgvector-"), cleanup_mode="delete")
print(server.get_uri(), flush=True)
sys.stdin.read()
server.cleanup()
"""


@pytest.fixture(scope="module")
def pgvector_url() -> Iterator[str]:
    """A PostgreSQL whose pgvector works: PARLEY_TEST_PGVECTOR_URL, else one started with the
    pgserver wheel's PostgreSQL 16 + pgvector (PARLEY_TEST_PGVECTOR_PYTHON), else a skip.

    Not the embedded server Parley ships: on the development VM its pgvector 0.8.2 kills the
    backend with signal 4 (Illegal instruction: built for CPU instructions that VM lacks), and
    the machine's PostgreSQL 15 has no pgvector package."""
    if url := os.environ.get("PARLEY_TEST_PGVECTOR_URL"):
        yield url
        return
    python = os.environ.get("PARLEY_TEST_PGVECTOR_PYTHON")
    if not python:
        pytest.skip(NO_PGVECTOR)
    server = subprocess.Popen(
        [python, "-c", _SERVE_PGVECTOR], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert server.stdout is not None
    assert server.stdin is not None
    try:
        url = server.stdout.readline().strip()
        assert url.startswith("postgresql://"), f"the pgvector server did not start: {url!r}"
        yield url
    finally:
        server.stdin.close()
        server.wait(timeout=60)


async def test_semantic_recall_is_refused_at_start_without_pgvector(database_url: str) -> None:
    store = PostgresMemoryStore(database_url, embeddings=MemoryEmbeddings(model=WordCounts(), dims=16))
    if has_pgvector(database_url):
        pytest.skip("the test database has pgvector: nothing to refuse")
    with pytest.raises(StorageUnavailable, match="pgvector"):
        await store.start()


async def test_semantic_recall_finds_a_users_nearest_facts_with_pgvector(pgvector_url: str) -> None:
    embeddings = MemoryEmbeddings(model=WordCounts(), dims=16)
    store = PostgresMemoryStore(pgvector_url, embeddings=embeddings)
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
        # Nearest first, and only this user's facts (the other user's "tea" is as near as ours).
        assert [m.text for m in await store.recall(user, "lives in Porto", limit=5)] == [
            "The user lives in Porto",
            "The user likes tea",
        ]
    finally:
        await store.aclose()
