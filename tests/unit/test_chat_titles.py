"""Auto-named chats, wired by hand with fakes: the title job, the turn that starts it, the
domain's cleaning of a suggested title, and the offline writer."""

from __future__ import annotations

import asyncio
import logging
from uuid import UUID

import pytest

from parley.adapters.outbound.langgraph.titles import OfflineTitleWriter
from parley.application.chat.conversations import GetConversation, RenameConversation
from parley.application.chat.sending import complete_turn
from parley.application.chat.titles import ChatTitles
from parley.application.chat.turns import ReplyStored
from parley.domain.chat import ConversationName, wants_title
from parley.ports.agent import AgentUnavailable, TokenDelta
from tests.fakes.agent import ScriptedTurn
from tests.fakes.titles import ScriptedTitleWriter
from tests.unit.chat_world import ALICE, Chat, chat_world

pytestmark = pytest.mark.unit


def titled_world(chat: Chat, writer: ScriptedTitleWriter, **options: object) -> ChatTitles:
    chat.titles = ChatTitles(writer, chat.db.unit_of_work, chat.clock, **options)  # type: ignore[arg-type]
    return chat.titles


async def name_of(chat: Chat, conversation_id: UUID) -> str:
    return (await GetConversation(chat.db.unit_of_work).execute(ALICE, conversation_id)).name


async def send(chat: Chat, conversation_id: UUID, text: str = "Plan a trip to Lisbon") -> None:
    await complete_turn(await chat.take_turn().execute(ALICE, conversation_id, text))


async def test_a_ready_title_is_stored_with_the_first_reply_and_reported() -> None:
    chat = await chat_world()
    writer = ScriptedTitleWriter(answer='Title: "Lisbon trip."')
    titles = titled_world(chat, writer)
    conversation = await chat.conversation()
    chat.agent.script(ScriptedTurn.reply("Here is a plan"))

    exchange_turn = await chat.take_turn().execute(ALICE, conversation, "Plan a trip to Lisbon")
    events = [event async for event in exchange_turn.events()]
    await exchange_turn.aclose()

    stored = events[-1]
    assert isinstance(stored, ReplyStored)
    assert stored.renamed is not None
    assert (stored.renamed.name, stored.renamed.message_count) == ("Lisbon trip", 2)
    assert writer.calls == [("Plan a trip to Lisbon", "Here is a plan")]
    assert await name_of(chat, conversation) == "Lisbon trip"
    await titles.idle()


async def test_a_ready_title_does_not_override_a_rename_made_during_the_turn() -> None:
    chat = await chat_world()
    writer = ScriptedTitleWriter(answer="Lisbon trip")
    titles = titled_world(chat, writer)
    conversation = await chat.conversation()
    chat.agent.script(ScriptedTurn.reply("ab", chunk=1))

    turn = await chat.take_turn().execute(ALICE, conversation, "Plan a trip")
    events = turn.events()
    first = await anext(events)
    await RenameConversation(chat.db.unit_of_work, chat.clock).execute(ALICE, conversation, "Mine")
    rest = [event async for event in events]
    await turn.aclose()
    await titles.idle()

    assert isinstance(first, TokenDelta)
    stored = rest[-1]
    assert isinstance(stored, ReplyStored)
    assert stored.renamed is None
    assert len(writer.calls) == 1
    assert await name_of(chat, conversation) == "Mine"


async def test_a_slow_title_is_stored_in_the_background_after_the_reply() -> None:
    chat = await chat_world()
    writer = ScriptedTitleWriter(answer="Lisbon trip", gate=asyncio.Event())
    titles = titled_world(chat, writer)
    conversation = await chat.conversation()

    exchange = await complete_turn(await chat.take_turn().execute(ALICE, conversation, "Plan a trip"))

    assert exchange.reply is not None
    assert exchange.reply.status.value == "complete"  # the reply did not wait for the title
    assert await name_of(chat, conversation) == "New chat"
    assert writer.gate is not None
    writer.gate.set()
    await titles.idle()
    assert await name_of(chat, conversation) == "Lisbon trip"


async def test_a_rename_by_the_user_meanwhile_wins() -> None:
    chat = await chat_world()
    writer = ScriptedTitleWriter(answer="Lisbon trip", gate=asyncio.Event())
    titles = titled_world(chat, writer)
    conversation = await chat.conversation()
    await send(chat, conversation)

    await RenameConversation(chat.db.unit_of_work, chat.clock).execute(ALICE, conversation, "My holiday")
    assert writer.gate is not None
    writer.gate.set()
    await titles.idle()

    assert await name_of(chat, conversation) == "My holiday"


async def test_only_the_first_exchange_of_a_default_named_conversation_is_titled() -> None:
    chat = await chat_world()
    writer = ScriptedTitleWriter(error=RuntimeError("model down"))
    titles = titled_world(chat, writer)
    default_named = await chat.conversation()
    named = await chat.conversation(name="Named by its user")

    await send(chat, default_named)
    await send(chat, default_named)  # still "New chat" (the first title failed), but not the first exchange
    await send(chat, named)
    await titles.idle()

    assert len(writer.calls) == 1
    assert await name_of(chat, default_named) == "New chat"
    assert await name_of(chat, named) == "Named by its user"


async def test_a_failed_first_reply_asks_for_no_title() -> None:
    chat = await chat_world()
    writer = ScriptedTitleWriter()
    titled_world(chat, writer)
    conversation = await chat.conversation()
    chat.agent.script(ScriptedTurn.failing(AgentUnavailable("down")))

    with pytest.raises(AgentUnavailable):
        await send(chat, conversation)

    assert writer.calls == []
    assert await name_of(chat, conversation) == "New chat"


async def test_nothing_is_titled_when_auto_naming_is_off() -> None:
    chat = await chat_world()
    writer = ScriptedTitleWriter()
    titled_world(chat, writer, enabled=False)
    conversation = await chat.conversation()

    await send(chat, conversation)

    assert writer.calls == []
    assert await name_of(chat, conversation) == "New chat"


@pytest.mark.parametrize(
    "writer",
    [
        ScriptedTitleWriter(error=RuntimeError("model down")),
        ScriptedTitleWriter(answer=' \n\t"" '),  # nothing usable left after cleaning
    ],
)
async def test_a_failing_writer_leaves_the_default_name(writer: ScriptedTitleWriter) -> None:
    chat = await chat_world()
    titles = titled_world(chat, writer)
    conversation = await chat.conversation()

    await send(chat, conversation)
    await titles.idle()

    assert len(writer.calls) == 1
    assert await name_of(chat, conversation) == "New chat"


async def test_a_writer_that_does_not_answer_in_time_leaves_the_default_name() -> None:
    chat = await chat_world()
    writer = ScriptedTitleWriter(gate=asyncio.Event())  # never opened
    titles = titled_world(chat, writer, timeout=0.05)
    conversation = await chat.conversation()

    await send(chat, conversation)
    await asyncio.wait_for(titles.idle(), timeout=30)

    assert writer.cancelled == 1
    assert await name_of(chat, conversation) == "New chat"


async def test_a_database_outage_while_storing_the_title_is_swallowed() -> None:
    chat = await chat_world()
    writer = ScriptedTitleWriter(gate=asyncio.Event())
    titles = titled_world(chat, writer)
    conversation = await chat.conversation()
    await send(chat, conversation)

    chat.db.fail_with_unavailable = True
    assert writer.gate is not None
    writer.gate.set()
    await titles.idle()  # the job ended, its error logged, not raised
    chat.db.fail_with_unavailable = False

    assert await name_of(chat, conversation) == "New chat"


async def test_jobs_beyond_the_bound_are_dropped_with_a_log_line(caplog: pytest.LogCaptureFixture) -> None:
    chat = await chat_world()
    writer = ScriptedTitleWriter(gate=asyncio.Event())
    titles = titled_world(chat, writer, max_pending=1)
    first, second = await chat.conversation(), await chat.conversation()

    with caplog.at_level(logging.WARNING, logger="parley.application.chat.titles"):
        await send(chat, first)
        await send(chat, second)

    assert len(writer.calls) == 1
    assert (len(titles), titles.dropped) == (1, 1)
    assert any("already being written" in record.getMessage() for record in caplog.records)
    assert writer.gate is not None
    writer.gate.set()
    await titles.idle()
    assert [await name_of(chat, c) for c in (first, second)] == ["A fine title", "New chat"]


async def test_shutdown_cancels_the_pending_jobs() -> None:
    chat = await chat_world()
    writer = ScriptedTitleWriter(gate=asyncio.Event())
    titles = titled_world(chat, writer)
    conversation = await chat.conversation()
    await send(chat, conversation)
    assert len(titles) == 1

    await titles.aclose()

    assert len(titles) == 0
    assert writer.cancelled == 1
    assert await name_of(chat, conversation) == "New chat"


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        ("Lisbon trip", "Lisbon trip"),
        ('  Title: "Lisbon\ntrip."  ', "Lisbon trip"),
        ("**Lisbon\x00 trip**", "Lisbon trip"),
        ("«Voyage à Lisbonne»", "Voyage à Lisbonne"),
        ("word " * 100, ("word " * 40).strip()),
        ("x" * 300, "x" * 200),
    ],
)
def test_a_suggested_title_is_cleaned_into_a_valid_name(raw: str, name: str) -> None:
    cleaned = ConversationName.from_suggestion(raw)

    assert cleaned is not None
    assert cleaned.value == name
    assert ConversationName.parse(cleaned.value) == cleaned


@pytest.mark.parametrize("raw", ["", "  ", "\n\t", '""', "Title:", "..."])
def test_a_suggestion_with_nothing_usable_gives_no_name(raw: str) -> None:
    assert ConversationName.from_suggestion(raw) is None


def test_a_conversation_wants_a_title_only_with_the_default_name_and_its_first_message() -> None:
    assert wants_title("New chat", 1)
    assert not wants_title("New chat", 3)
    assert not wants_title("Trip", 1)


@pytest.mark.parametrize(
    ("message", "title"),
    [
        ("What is 17 * 23?", "What is 17 * 23?"),
        ("  Plan\na   trip to Lisbon for me and my family please  ", "Plan a trip to Lisbon for"),
        ("a" * 100, "a" * 60),
        ("Supercalifragilistic " * 4, "Supercalifragilistic Supercalifragilistic"),
    ],
)
async def test_the_offline_writer_names_a_chat_by_the_first_words_of_its_message(
    message: str, title: str
) -> None:
    assert await OfflineTitleWriter().suggest(message, "whatever the reply") == title
