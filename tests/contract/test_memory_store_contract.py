"""The MemoryStore contract, run against the in-memory double and the LangGraph Postgres adapter."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import cast
from uuid import UUID, uuid4

import pytest

from parley.adapters.outbound.langgraph.memory_store import PostgresMemoryStore
from parley.domain.memory import memory_id
from parley.ports.memory import MemoryStore
from tests.fakes.memory import InMemoryMemoryStore

pytestmark = pytest.mark.contract


@pytest.fixture(scope="module")
def database_url(create_database: Callable[[], str]) -> str:
    return create_database()


@pytest.fixture(params=["in-memory", "postgres"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[MemoryStore]:
    if request.param == "in-memory":
        yield InMemoryMemoryStore()
        return
    real = PostgresMemoryStore(cast(str, request.getfixturevalue("database_url")))
    await real.start()
    try:
        yield real
    finally:
        await real.aclose()


async def remember_each(store: MemoryStore, user_id: UUID, *facts: str) -> None:
    """One call per fact, so each is strictly newer than the one before."""
    for fact in facts:
        await store.remember(user_id, [fact])


async def texts(store: MemoryStore, user_id: UUID) -> list[str]:
    return [m.text for m in (await store.list_page(user_id, limit=100)).items]


async def test_facts_are_listed_newest_first_under_their_ids(store: MemoryStore) -> None:
    user = uuid4()
    await remember_each(store, user, "The user's name is Ada", "The user likes tea")

    page = await store.list_page(user, limit=10)

    assert [m.text for m in page.items] == ["The user likes tea", "The user's name is Ada"]
    assert [m.id for m in page.items] == [memory_id(user, m.text) for m in page.items]
    assert page.next_cursor is None
    assert page.items[0].created_at >= page.items[1].created_at


async def test_a_fact_told_again_stays_one_memory(store: MemoryStore) -> None:
    user = uuid4()
    await store.remember(user, ["The user lives in Lisbon"])
    (first,) = (await store.list_page(user, limit=10)).items

    await store.remember(user, ["the user  lives in LISBON", "The user lives in Lisbon"])

    (kept,) = (await store.list_page(user, limit=10)).items
    assert (kept.id, kept.created_at) == (first.id, first.created_at)


async def test_pages_follow_each_other(store: MemoryStore) -> None:
    user = uuid4()
    await remember_each(store, user, *(f"Fact number {n}" for n in range(5)))

    first = await store.list_page(user, limit=2)
    assert first.next_cursor is not None
    second = await store.list_page(user, limit=2, after=first.next_cursor)
    assert second.next_cursor is not None
    third = await store.list_page(user, limit=2, after=second.next_cursor)

    listed = [m.text for page in (first, second, third) for m in page.items]
    assert listed == [f"Fact number {n}" for n in (4, 3, 2, 1, 0)]
    assert third.next_cursor is None


async def test_recall_puts_the_relevant_facts_first_then_the_newest(store: MemoryStore) -> None:
    user = uuid4()
    await remember_each(
        store, user, "The user's name is Ada", "The user likes sailing", "The user lives in Porto"
    )

    relevant = await store.recall(user, "What is my NAME?", limit=2)
    no_words = await store.recall(user, "?!", limit=2)

    assert [m.text for m in relevant] == ["The user's name is Ada", "The user lives in Porto"]
    assert [m.text for m in no_words] == ["The user lives in Porto", "The user likes sailing"]
    assert await store.recall(uuid4(), "name", limit=5) == []


async def test_users_are_kept_apart(store: MemoryStore) -> None:
    ada, bob = uuid4(), uuid4()
    await store.remember(ada, ["The user's name is Ada"])
    (memory,) = (await store.list_page(ada, limit=10)).items

    assert await store.forget(bob, memory.id) is False
    await store.forget_all(bob)

    assert await texts(store, bob) == []
    assert await store.recall(bob, "name Ada", limit=5) == []
    assert await texts(store, ada) == ["The user's name is Ada"]


async def test_forget_one_then_all(store: MemoryStore) -> None:
    user = uuid4()
    await remember_each(store, user, "The user likes tea", "The user likes jazz")
    tea = memory_id(user, "The user likes tea")

    assert await store.forget(user, tea) is True
    assert await store.forget(user, tea) is False
    assert await texts(store, user) == ["The user likes jazz"]
    await store.forget_all(user)
    await store.forget_all(user)
    assert await texts(store, user) == []


async def test_hostile_text_is_kept_and_searched_as_text(store: MemoryStore) -> None:
    user = uuid4()
    fact = "The user's motto is 'a & b | !c' -- or \"; DROP TABLE store; --"
    await store.remember(user, [fact])

    found = await store.recall(user, "motto & | ! ( ) ' \" or -- :*", limit=5)

    assert [m.text for m in found] == [fact]
