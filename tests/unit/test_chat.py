"""Chat use cases (conversations, history, turns) wired by hand with fakes."""

from __future__ import annotations

import asyncio
from contextlib import aclosing
from datetime import timedelta
from uuid import UUID, uuid4

import pytest

from parley.application.chat.conversations import (
    DeleteConversation,
    GetConversation,
    ListConversations,
    RenameConversation,
)
from parley.application.chat.history import ClearMessages, ListMessages
from parley.application.chat.sending import SendMessage, StreamReply, complete_turn
from parley.application.chat.turns import ReplyFailed, ReplyStored
from parley.domain.chat import MessageRole, MessageStatus
from parley.domain.errors import ConversationNotFound, ReplyInProgress, ValidationFailed
from parley.ports.agent import AgentTimeout, AgentUnavailable, ModelRetry, TokenDelta, ToolCall, Usage
from tests.fakes.agent import ScriptedTurn
from tests.unit.chat_world import ALICE, BOB, Chat, chat_world

pytestmark = pytest.mark.unit


@pytest.fixture
async def chat() -> Chat:
    return await chat_world()


async def test_create_defaults_the_name_and_lists_newest_activity_first(chat: Chat) -> None:
    first = await chat.conversation()
    chat.clock.advance(timedelta(seconds=1))
    second = await chat.conversation(name="  Trip  ")
    chat.clock.advance(timedelta(seconds=1))
    await complete_turn(await chat.take_turn().execute(ALICE, first, "hello"))

    page = await ListConversations(chat.db.unit_of_work).execute(ALICE, limit=10)

    assert [c.id for c in page.items] == [first, second]
    assert [c.name for c in page.items] == ["New chat", "Trip"]
    assert page.items[0].message_count == 2
    assert page.next_cursor is None


async def test_listing_pages_with_an_opaque_cursor(chat: Chat) -> None:
    ids = []
    for _ in range(5):
        ids.append(await chat.conversation())
        chat.clock.advance(timedelta(seconds=1))
    use_case = ListConversations(chat.db.unit_of_work)

    first = await use_case.execute(ALICE, limit=2)
    second = await use_case.execute(ALICE, limit=2, cursor=first.next_cursor)
    third = await use_case.execute(ALICE, limit=2, cursor=second.next_cursor)

    seen = [c.id for page in (first, second, third) for c in page.items]
    assert seen == list(reversed(ids))
    assert third.next_cursor is None
    with pytest.raises(ValidationFailed):
        await use_case.execute(ALICE, limit=2, cursor="forged")


async def test_another_users_conversation_is_not_found(chat: Chat) -> None:
    conversation_id = await chat.conversation(ALICE)

    with pytest.raises(ConversationNotFound):
        await GetConversation(chat.db.unit_of_work).execute(BOB, conversation_id)
    with pytest.raises(ConversationNotFound):
        await RenameConversation(chat.db.unit_of_work, chat.clock).execute(BOB, conversation_id, "mine")
    with pytest.raises(ConversationNotFound):
        await DeleteConversation(chat.db.unit_of_work, chat.agent).execute(BOB, conversation_id)
    with pytest.raises(ConversationNotFound):
        await chat.take_turn().execute(BOB, conversation_id, "hi")
    assert (await ListConversations(chat.db.unit_of_work).execute(BOB, limit=10)).items == []


async def test_rename_trims_and_validates(chat: Chat) -> None:
    conversation_id = await chat.conversation()
    rename = RenameConversation(chat.db.unit_of_work, chat.clock)

    renamed = await rename.execute(ALICE, conversation_id, "  Plans ")

    assert renamed.name == "Plans"
    with pytest.raises(ValidationFailed):
        await rename.execute(ALICE, conversation_id, "   ")


async def test_a_turn_stores_both_messages_and_counts_usage(chat: Chat) -> None:
    conversation_id = await chat.conversation()
    chat.agent.script(ScriptedTurn.reply("Hello there", chunk=3))

    exchange = await complete_turn(await chat.take_turn().execute(ALICE, conversation_id, "Hi <b>&</b>"))

    assert exchange.message is not None
    assert exchange.reply is not None
    assert exchange.message.content == "Hi <b>&</b>"
    assert exchange.reply.content == "Hello there"
    assert await chat.messages(conversation_id) == [
        ("user", "Hi <b>&</b>", "complete"),
        ("assistant", "Hello there", "complete"),
    ]
    assert chat.db.reply_claim(conversation_id) is None


async def test_streamed_events_concatenate_to_the_stored_reply(chat: Chat) -> None:
    conversation_id = await chat.conversation()
    chat.agent.script(
        ScriptedTurn(
            events=[
                TokenDelta("Let me "),
                ToolCall("calculator", {"expression": "2+2"}, "4"),
                Usage("model-a", 10, 2),
                TokenDelta("say: 4"),
                Usage("model-a", 20, 3),
            ]
        )
    )
    turn = await chat.take_turn().execute(ALICE, conversation_id, "2+2?")

    events = [event async for event in turn.events()]

    deltas = "".join(e.text for e in events if isinstance(e, TokenDelta))
    done = events[-1]
    assert isinstance(done, ReplyStored)
    assert done.message.content == deltas == "Let me say: 4"
    assert (done.prompt_tokens, done.completion_tokens) == (30, 5)
    assert [e.name for e in events if isinstance(e, ToolCall)] == ["calculator"]
    trace = chat.tracer.last_turn
    assert [g.model for g in trace.model_calls] == ["model-a", "model-a"]
    assert trace.ended is not None
    assert trace.ended.status == "complete"


async def test_a_second_concurrent_turn_is_refused_until_the_first_ends(chat: Chat) -> None:
    conversation_id = await chat.conversation()
    first = await chat.take_turn().execute(ALICE, conversation_id, "one")

    with pytest.raises(ReplyInProgress):
        await chat.take_turn().execute(ALICE, conversation_id, "two")

    await complete_turn(first)
    await complete_turn(await chat.take_turn().execute(ALICE, conversation_id, "three"))


async def test_a_dead_holders_claim_expires(chat: Chat) -> None:
    conversation_id = await chat.conversation()
    await chat.take_turn(claim_ttl=timedelta(seconds=30)).execute(ALICE, conversation_id, "abandoned")

    chat.clock.advance(timedelta(seconds=31))

    await complete_turn(await chat.take_turn().execute(ALICE, conversation_id, "retry"))


@pytest.mark.parametrize("error", [AgentUnavailable("down", model="m"), AgentTimeout("slow", model="m")])
async def test_a_model_failure_keeps_the_user_message_and_stores_a_failed_reply(
    chat: Chat, error: Exception
) -> None:
    conversation_id = await chat.conversation()
    chat.agent.script(ScriptedTurn.failing(error, events=[ModelRetry(1, "429", "m")]))

    with pytest.raises(type(error)):
        await complete_turn(await chat.take_turn().execute(ALICE, conversation_id, "hello"))

    assert await chat.messages(conversation_id) == [
        ("user", "hello", "complete"),
        ("assistant", "", "failed"),
    ]
    assert chat.db.reply_claim(conversation_id) is None
    trace = chat.tracer.last_turn
    assert [r.attempt for r in trace.retries] == [1]
    assert trace.errors[0].kind == type(error).__name__


async def test_a_failure_while_streaming_yields_reply_failed_with_the_partial_text(chat: Chat) -> None:
    conversation_id = await chat.conversation()
    chat.agent.script(ScriptedTurn.failing(AgentUnavailable("cut"), events=[TokenDelta("partial")]))
    turn = await chat.take_turn().execute(ALICE, conversation_id, "hello")

    events = [event async for event in turn.events()]

    failed = events[-1]
    assert isinstance(failed, ReplyFailed)
    assert failed.message is not None
    assert failed.message.content == "partial"
    assert failed.message.status is MessageStatus.FAILED


async def test_closing_the_stream_stops_the_agent_and_stores_an_incomplete_reply(chat: Chat) -> None:
    conversation_id = await chat.conversation()
    chat.agent.script(ScriptedTurn(events=[TokenDelta("a"), TokenDelta("b"), TokenDelta("c")], hang=True))
    turn = await chat.take_turn().execute(ALICE, conversation_id, "hello")

    async with aclosing(turn.events()) as events:
        async for event in events:
            if isinstance(event, TokenDelta) and event.text == "b":
                break

    assert chat.agent.closed_early
    assert await chat.messages(conversation_id) == [
        ("user", "hello", "complete"),
        ("assistant", "ab", "incomplete"),
    ]
    assert chat.db.reply_claim(conversation_id) is None


async def test_cancelling_the_consuming_task_stores_an_incomplete_reply(chat: Chat) -> None:
    conversation_id = await chat.conversation()
    chat.agent.script(ScriptedTurn(events=[TokenDelta("partial")], hang=True))
    turn = await chat.take_turn().execute(ALICE, conversation_id, "hello")
    got_token = asyncio.Event()

    async def consume() -> None:
        async for event in turn.events():
            if isinstance(event, TokenDelta):
                got_token.set()

    task = asyncio.create_task(consume())
    await got_token.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert chat.agent.closed_early
    assert await chat.messages(conversation_id) == [
        ("user", "hello", "complete"),
        ("assistant", "partial", "incomplete"),
    ]


async def test_a_turn_never_streamed_is_closed_as_incomplete(chat: Chat) -> None:
    conversation_id = await chat.conversation()
    turn = await chat.take_turn().execute(ALICE, conversation_id, "hello")

    await turn.aclose()
    await turn.aclose()  # idempotent

    assert await chat.messages(conversation_id) == [
        ("user", "hello", "complete"),
        ("assistant", "", "incomplete"),
    ]
    assert chat.db.reply_claim(conversation_id) is None


@pytest.mark.parametrize("content", ["", "   ", "nul\x00byte", "x" * 11])
async def test_invalid_content_is_refused_before_anything_is_stored(chat: Chat, content: str) -> None:
    conversation_id = await chat.conversation()

    with pytest.raises(ValidationFailed):
        await chat.take_turn(max_message_chars=10).execute(ALICE, conversation_id, content)

    assert await chat.messages(conversation_id) == []
    assert chat.agent.streams == []


async def test_history_pages_backwards_in_chronological_order(chat: Chat) -> None:
    conversation_id = await chat.conversation()
    for n in range(3):
        chat.clock.advance(timedelta(seconds=1))
        await complete_turn(await chat.take_turn().execute(ALICE, conversation_id, f"m{n}"))
    history = ListMessages(chat.db.unit_of_work)

    newest = await history.execute(ALICE, conversation_id, limit=4)
    older = await history.execute(ALICE, conversation_id, limit=4, before=UUID(newest.next_cursor or ""))

    assert [m.role for m in newest.items] == [MessageRole.USER, MessageRole.ASSISTANT] * 2
    assert [m.content for m in newest.items if m.role is MessageRole.USER] == ["m1", "m2"]
    assert [m.content for m in older.items if m.role is MessageRole.USER] == ["m0"]
    assert older.next_cursor is None
    assert (await history.execute(ALICE, conversation_id, limit=4, before=uuid4())).items == []


async def test_clear_and_delete_forget_the_agents_memory(chat: Chat) -> None:
    conversation_id = await chat.conversation()
    await complete_turn(await chat.take_turn().execute(ALICE, conversation_id, "remember me"))

    await ClearMessages(chat.db.unit_of_work, chat.agent, chat.clock).execute(ALICE, conversation_id)

    assert await chat.messages(conversation_id) == []
    assert chat.agent.remembered(conversation_id) == []
    assert (await GetConversation(chat.db.unit_of_work).execute(ALICE, conversation_id)).message_count == 0

    await complete_turn(await chat.take_turn().execute(ALICE, conversation_id, "remember me again"))
    await DeleteConversation(chat.db.unit_of_work, chat.agent).execute(ALICE, conversation_id)

    assert chat.agent.remembered(conversation_id) == []
    assert set(chat.agent.forgotten) == {conversation_id}
    with pytest.raises(ConversationNotFound):
        await GetConversation(chat.db.unit_of_work).execute(ALICE, conversation_id)


async def test_sending_a_message_returns_both_stored_messages_from_a_non_streamed_call(chat: Chat) -> None:
    conversation_id = await chat.conversation()
    chat.agent.script(ScriptedTurn.reply("Hello there", chunk=3))

    exchange = await SendMessage(chat.services()).execute(ALICE, conversation_id, "hi")

    assert exchange.message is not None
    assert exchange.reply is not None
    assert (exchange.message.content, exchange.reply.content) == ("hi", "Hello there")
    assert chat.agent.turns[-1].stream_tokens is False
    assert await chat.messages(conversation_id) == [
        ("user", "hi", "complete"),
        ("assistant", "Hello there", "complete"),
    ]


async def test_streaming_a_reply_hands_back_a_turn_that_streams_tokens(chat: Chat) -> None:
    conversation_id = await chat.conversation()
    chat.agent.script(ScriptedTurn.reply("Hello there", chunk=3))

    turn = await StreamReply(chat.services()).execute(ALICE, conversation_id, "hi")
    async with aclosing(turn.events()) as events:
        received = [event async for event in events]

    assert chat.agent.turns[-1].stream_tokens is True
    assert "".join(e.text for e in received if isinstance(e, TokenDelta)) == "Hello there"
    assert isinstance(received[-1], ReplyStored)
