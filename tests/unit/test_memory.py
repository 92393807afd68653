"""Long-term memory, wired by hand with fakes: the domain's rules for a fact, the offline and
model extractors' parsing, what the model is shown, and :class:`UserMemory` in a turn (recall
before the agent, learning after a complete reply, bounded background jobs, failures contained)."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from uuid import UUID, uuid4

import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from parley.adapters.outbound.langgraph.context import MEMORIES_HEADING, build_context, with_memories
from parley.adapters.outbound.langgraph.facts import OfflineFactExtractor, parse_facts
from parley.adapters.outbound.langgraph.memory_store import MemoryEmbeddings, openai_embeddings, query_words
from parley.adapters.outbound.langgraph.offline_model import OfflineChatModel
from parley.application.chat.sending import complete_turn
from parley.application.memory import ForgetAllMemories, ForgetMemory, ListMemories, UserMemory
from parley.application.users import DeleteAccount
from parley.domain.errors import MemoryNotFound, ValidationFailed
from parley.domain.memory import MAX_MEMORY_CHARS, MemoryCursor, memory_id, memory_text
from parley.ports.agent import AgentUnavailable
from tests.fakes.agent import ScriptedTurn
from tests.fakes.memory import InMemoryMemoryStore, ScriptedFactExtractor
from tests.unit.chat_world import ALICE, BOB, Chat, chat_world

pytestmark = pytest.mark.unit


# -- the domain ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "kept"),
    [
        ('  "The user\'s name is\nAda."  ', "The user's name is Ada"),
        ("- The user likes tea", "The user likes tea"),
        ("nul\x00here", "nul here"),
        ("lone \ud800 surrogate", "lone \ufffd surrogate"),
        ("  .  ", None),
        ("", None),
    ],
)
def test_a_fact_is_cleaned_to_one_storable_line(raw: str, kept: str | None) -> None:
    assert memory_text(raw) == kept


def test_a_long_fact_is_cut_at_a_space() -> None:
    kept = memory_text("word " * 100)
    assert kept is not None
    assert len(kept) <= MAX_MEMORY_CHARS
    assert kept.endswith("word")


def test_a_fact_has_the_same_id_in_any_case_or_spacing_but_not_for_another_user() -> None:
    user = uuid4()
    assert memory_id(user, "The user likes Tea") == memory_id(user, "the user  likes tea")
    assert memory_id(user, "The user likes tea") != memory_id(uuid4(), "The user likes tea")
    assert memory_id(user, "The user likes tea") != memory_id(user, "The user likes jazz")


def test_a_memory_cursor_round_trips_and_a_forged_one_is_refused() -> None:
    cursor = MemoryCursor(datetime(2026, 5, 1, tzinfo=UTC), uuid4())
    assert MemoryCursor.decode(cursor.encode()) == cursor
    for forged in ("x", "bm90IGEgY3Vyc29y", MemoryCursor(datetime(2026, 5, 1), uuid4()).encode()):
        with pytest.raises(ValidationFailed) as refused:
            MemoryCursor.decode(forged)
        assert refused.value.problems[0].field == "cursor"


# -- the extractors ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "facts"),
    [
        (
            "Hi! My name is Ada Lovelace. I prefer tea over coffee, but not too hot.",
            ["The user's name is Ada Lovelace", "The user prefers tea over coffee"],
        ),
        ("I live in Lisbon and I work as a nurse", ["The user lives in Lisbon", "The user works as a nurse"]),
        ("my favorite color is blue!", ["The user's favourite color is blue"]),
        ("I'm a teacher; call me Ada", ["The user wants to be called Ada", "The user is a teacher"]),
        (
            "I hate mornings. I am allergic to peanuts",
            ["The user dislikes mornings", "The user is allergic to peanuts"],
        ),
        ("Do I like jazz? What is my name?", []),
        ("hello there, what is 2+3?", []),
    ],
)
async def test_the_offline_extractor_finds_simple_stated_facts(message: str, facts: list[str]) -> None:
    assert await OfflineFactExtractor().extract([message]) == facts


@pytest.mark.parametrize(
    ("answer", "facts"),
    [
        (
            '["The user\'s name is Ada", "The user likes tea"]',
            ["The user's name is Ada", "The user likes tea"],
        ),
        ('Sure!\n```json\n["A", 3, null, "B"]\n```', ["A", "B"]),
        ("[]", []),
        ("No facts here.", []),
        ('{"facts": "A"}', []),
        ("[not json]", []),
        ("] backwards [", []),
    ],
)
def test_the_model_extractor_keeps_only_the_strings_of_a_json_array(answer: str, facts: list[str]) -> None:
    assert parse_facts(answer) == facts


def test_the_full_text_query_ors_the_distinct_words_of_a_message() -> None:
    assert query_words("What is my name? my NAME!") == "what or is or my or name"
    assert query_words("?! -- ()") is None


def test_embeddings_configure_a_pgvector_index_on_the_fact_text() -> None:
    embeddings = openai_embeddings(
        "text-embedding-3-small", dims=256, api_key="test-key", base_url="http://127.0.0.1:9/v1", timeout=5.0
    )
    assert isinstance(embeddings, MemoryEmbeddings)
    config = embeddings.index_config()
    assert (config["dims"], config["fields"], config["embed"]) == (256, ["text"], embeddings.model)
    assert config.get("ann_index_config") == {"kind": "flat"}  # exact search within a user's facts


# -- what the model is shown ---------------------------------------------------------------


def test_recalled_facts_follow_the_system_prompt_and_count_within_the_budget() -> None:
    system = with_memories("Be brief.", ["The user's name is Ada", "The user likes tea"])
    history = [HumanMessage(content="x " * 200), HumanMessage(content="What is my name?")]

    assert system == f"Be brief.\n\n{MEMORIES_HEADING}\n- The user's name is Ada\n- The user likes tea"
    assert with_memories("Be brief.", []) == "Be brief."
    plain, remembering = (build_context(p, history, budget=150) for p in ("Be brief.", system))
    assert len(plain) == 3  # both messages fit beside the short prompt...
    assert len(remembering) == 2  # ...but the facts take the older one's room
    assert remembering[0] == SystemMessage(content=system)


async def test_the_offline_model_says_which_facts_it_was_shown() -> None:
    model = OfflineChatModel()
    shown = with_memories("Be brief.", ["The user's name is Ada"])

    remembering = await model.ainvoke([SystemMessage(shown), HumanMessage("Who am I?")])
    plain = await model.ainvoke([SystemMessage("Be brief."), HumanMessage("Who am I?")])

    assert remembering.text.endswith("I know about you: The user's name is Ada.")
    assert "I know about you" not in plain.text


# -- UserMemory in a turn ------------------------------------------------------------------


def remembering(chat: Chat, extractor: ScriptedFactExtractor) -> InMemoryMemoryStore:
    store = InMemoryMemoryStore()
    chat.memory = UserMemory(store, extractor, delay=0)
    return store


async def send(chat: Chat, text: str, conversation_id: UUID | None = None) -> None:
    conversation = conversation_id or await chat.conversation()
    await complete_turn(await chat.take_turn().execute(ALICE, conversation, text))


async def test_a_turn_is_given_the_recalled_facts_and_its_exchange_is_learnt_from() -> None:
    chat = await chat_world()
    extractor = ScriptedFactExtractor(["  The user's name is Ada. ", "The user's name is Ada", " "])
    store = remembering(chat, extractor)
    await store.remember(BOB.user_id, ["Bob's secret"])

    await send(chat, "My name is Ada")
    assert chat.memory is not None
    await chat.memory.idle()
    await send(chat, "What is my name?")

    first, second = chat.agent.turns
    assert (first.memories, second.memories) == ((), ("The user's name is Ada",))
    assert [m.text for m in (await store.list_page(ALICE.user_id, limit=10)).items] == [
        "The user's name is Ada"
    ]
    assert extractor.seen == [["My name is Ada"]]


async def test_a_failed_reply_teaches_nothing() -> None:
    chat = await chat_world()
    extractor = ScriptedFactExtractor(["The user's name is Ada"])
    store = remembering(chat, extractor)
    chat.agent.script(ScriptedTurn.failing(AgentUnavailable("down")))

    with pytest.raises(AgentUnavailable):
        await send(chat, "My name is Ada")

    assert extractor.seen == []
    assert (await store.list_page(ALICE.user_id, limit=10)).items == []


async def test_an_unreachable_store_neither_fails_the_turn_nor_the_job(
    caplog: pytest.LogCaptureFixture,
) -> None:
    chat = await chat_world()
    store = remembering(chat, ScriptedFactExtractor(["The user's name is Ada"]))
    store.unavailable = True
    conversation = await chat.conversation()

    with caplog.at_level(logging.WARNING):
        await send(chat, "My name is Ada", conversation)
        assert chat.memory is not None
        await chat.memory.idle()

    assert chat.agent.turns[0].memories == ()
    assert [m[0] for m in await chat.messages(conversation)] == ["user", "assistant"]
    assert "Could not recall the memories" in caplog.text
    assert "Could not keep the memories" in caplog.text


async def test_a_failing_extractor_is_logged_and_dropped(caplog: pytest.LogCaptureFixture) -> None:
    store = InMemoryMemoryStore()
    memory = UserMemory(store, ScriptedFactExtractor(error=RuntimeError("model down")), delay=0)

    with caplog.at_level(logging.WARNING):
        memory.learn(ALICE.user_id, uuid4(), "My name is Ada")
        await memory.idle()

    assert (await store.list_page(ALICE.user_id, limit=10)).items == []
    assert "Could not keep the memories" in caplog.text


async def test_background_jobs_are_bounded_and_held_until_they_end() -> None:
    extractor = ScriptedFactExtractor(["The user likes tea"])
    extractor.gate = asyncio.Event()
    store = InMemoryMemoryStore()
    memory = UserMemory(store, extractor, delay=0, max_pending=2)

    for _ in range(3):
        memory.learn(ALICE.user_id, uuid4(), "I like tea")
    await asyncio.sleep(0)

    assert (len(memory), memory.dropped) == (2, 1)
    extractor.gate.set()
    await memory.idle()
    assert len(memory) == 0
    assert [m.text for m in (await store.list_page(ALICE.user_id, limit=10)).items] == ["The user likes tea"]


async def test_a_conversations_quick_turns_are_learnt_from_in_one_extraction() -> None:
    extractor = ScriptedFactExtractor(["The user likes tea"])
    store = InMemoryMemoryStore()
    memory = UserMemory(store, extractor, delay=0)
    conversation, other = uuid4(), uuid4()

    memory.learn(ALICE.user_id, conversation, "I like tea")  # the job has not run yet...
    memory.learn(ALICE.user_id, conversation, "I live in Porto")  # ...so it gathers this one
    memory.learn(ALICE.user_id, other, "I like jazz")
    assert len(memory) == 2
    await memory.idle()
    memory.learn(ALICE.user_id, conversation, "I am a nurse")  # after it ran: a new job
    await memory.idle()

    assert extractor.seen == [["I like tea", "I live in Porto"], ["I like jazz"], ["I am a nurse"]]


async def test_erasing_a_user_stops_their_jobs_and_forgets_everything() -> None:
    extractor = ScriptedFactExtractor(["The user likes tea"])
    extractor.gate = asyncio.Event()
    store = InMemoryMemoryStore()
    await store.remember(ALICE.user_id, ["The user's name is Ada"])
    await store.remember(BOB.user_id, ["The user's name is Bob"])
    memory = UserMemory(store, extractor, delay=0)
    memory.learn(ALICE.user_id, uuid4(), "I like tea")
    memory.learn(BOB.user_id, uuid4(), "I like tea")
    await asyncio.sleep(0)

    await ForgetAllMemories(memory).execute(ALICE)
    assert len(memory) == 1  # Bob's job goes on
    extractor.gate.set()
    await memory.idle()

    assert (await store.list_page(ALICE.user_id, limit=10)).items == []
    assert len((await store.list_page(BOB.user_id, limit=10)).items) == 2


async def test_shutdown_cancels_the_pending_jobs() -> None:
    extractor = ScriptedFactExtractor(["The user likes tea"])
    extractor.gate = asyncio.Event()
    store = InMemoryMemoryStore()
    memory = UserMemory(store, extractor, delay=3600)
    memory.learn(ALICE.user_id, uuid4(), "I like tea")
    await asyncio.sleep(0)

    await memory.aclose()

    assert len(memory) == 0
    assert (await store.list_page(ALICE.user_id, limit=10)).items == []


async def test_the_callers_use_cases_list_and_forget_their_own_memories_only() -> None:
    store = InMemoryMemoryStore()
    await store.remember(ALICE.user_id, ["The user likes tea"])
    await store.remember(ALICE.user_id, ["The user likes jazz"])
    await store.remember(BOB.user_id, ["The user likes tea"])
    first = await ListMemories(store).execute(ALICE, limit=1)
    second = await ListMemories(store).execute(ALICE, limit=1, cursor=first.next_cursor)
    (bobs,) = (await ListMemories(store).execute(BOB, limit=5)).items

    with pytest.raises(MemoryNotFound):
        await ForgetMemory(store).execute(ALICE, bobs.id)
    await ForgetMemory(store).execute(ALICE, first.items[0].id)

    assert [m.text for m in first.items + second.items] == ["The user likes jazz", "The user likes tea"]
    assert second.next_cursor is None
    assert [m.text for m in (await ListMemories(store).execute(ALICE, limit=5)).items] == [
        "The user likes tea"
    ]
    assert len((await ListMemories(store).execute(BOB, limit=5)).items) == 1


async def test_deleting_an_account_erases_its_memories() -> None:
    chat = await chat_world()
    store = remembering(chat, ScriptedFactExtractor())
    await store.remember(ALICE.user_id, ["The user likes tea"])
    await store.remember(BOB.user_id, ["The user likes jazz"])

    await DeleteAccount(chat.db.unit_of_work, chat.agent, chat.running, memory=chat.memory).execute(ALICE)

    assert (await store.list_page(ALICE.user_id, limit=10)).items == []
    assert len((await store.list_page(BOB.user_id, limit=10)).items) == 1
