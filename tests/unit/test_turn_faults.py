"""What happens to a running chat turn when its conversation is deleted or cleared, or the
database goes away: the use cases wired by hand with fakes.

"In this process" means the deleting use case shares the turn's :class:`RunningTurns`;
"elsewhere" means it does not (another instance of the service).
"""

from __future__ import annotations

import asyncio
from contextlib import aclosing
from uuid import UUID

import pytest

from parley.application.chat.conversations import DeleteConversation
from parley.application.chat.history import ClearMessages
from parley.application.chat.running import DeferredWrites, RunningTurns
from parley.application.chat.sending import complete_turn
from parley.application.chat.turns import ReplyFailed, ReplyStored, Turn, TurnEvent
from parley.application.users import DeleteAccount
from parley.domain.errors import ConversationNotFound, HistoryCleared, NotAuthenticated
from parley.ports.agent import TokenDelta
from parley.ports.persistence import StorageUnavailable
from tests.fakes.agent import ScriptedTurn
from tests.unit.chat_world import ALICE, BOB, Chat, chat_world

pytestmark = pytest.mark.unit


@pytest.fixture
async def world() -> Chat:
    return await chat_world()


async def start_turn(world: Chat, conversation_id: UUID, content: str = "hello") -> Turn:
    return await world.take_turn().execute(ALICE, conversation_id, content)


async def collect(turn: Turn) -> list[TurnEvent]:
    async with aclosing(turn.events()) as events:
        return [event async for event in events]


def hanging_reply() -> ScriptedTurn:
    """A model that says one word and then thinks forever."""
    return ScriptedTurn(events=[TokenDelta("Once")], hang=True)


async def until_streaming(world: Chat) -> None:
    while not world.agent.streams or not world.agent.streams[-1].yielded:  # noqa: ASYNC110 - a fake
        await asyncio.sleep(0)


# ---------------------------------------------------------------- delete / clear in this process


async def test_clearing_in_this_process_stops_the_turn_and_keeps_nothing_of_it(world: Chat) -> None:
    conversation_id = await world.conversation()
    world.agent.script(hanging_reply())
    turn = await start_turn(world, conversation_id)
    events = asyncio.create_task(collect(turn))
    await until_streaming(world)

    clear = ClearMessages(world.db.unit_of_work, world.agent, world.clock, world.running)
    await clear.execute(ALICE, conversation_id)

    received = await asyncio.wait_for(events, timeout=5)
    assert received[0] == TokenDelta("Once")
    last = received[-1]
    assert isinstance(last, ReplyFailed)
    assert isinstance(last.error, HistoryCleared)
    assert world.agent.closed_early  # the model call was stopped, not left to finish
    assert await world.messages(conversation_id) == []
    assert world.agent.remembered(conversation_id) == []
    assert world.db.reply_claim(conversation_id) is None
    assert len(world.running) == 0


async def test_deleting_in_this_process_stops_the_turn_and_keeps_nothing_of_it(world: Chat) -> None:
    conversation_id = await world.conversation()
    world.agent.script(hanging_reply())
    turn = await start_turn(world, conversation_id)
    events = asyncio.create_task(collect(turn))
    await until_streaming(world)

    delete = DeleteConversation(world.db.unit_of_work, world.agent, world.running)
    await delete.execute(ALICE, conversation_id)

    last = (await asyncio.wait_for(events, timeout=5))[-1]
    assert isinstance(last, ReplyFailed)
    assert isinstance(last.error, ConversationNotFound)
    assert world.agent.closed_early
    assert world.agent.remembered(conversation_id) == []
    assert world.db.messages == []


async def test_deleting_the_account_stops_its_turns_and_keeps_nothing(world: Chat) -> None:
    conversation_id = await world.conversation()
    world.agent.script(hanging_reply())
    turn = await start_turn(world, conversation_id)
    events = asyncio.create_task(collect(turn))
    await until_streaming(world)

    await DeleteAccount(world.db.unit_of_work, world.agent, world.running).execute(ALICE)

    last = (await asyncio.wait_for(events, timeout=5))[-1]
    assert isinstance(last, ReplyFailed)
    assert isinstance(last.error, NotAuthenticated)
    assert world.agent.remembered(conversation_id) == []
    assert world.db.messages == []


async def test_another_users_turn_is_never_interrupted(world: Chat) -> None:
    conversation_id = await world.conversation()
    world.agent.script(ScriptedTurn.reply("fine", delay=0.01))
    turn = await start_turn(world, conversation_id)
    events = asyncio.create_task(collect(turn))

    await world.running.interrupt([conversation_id], owner_id=BOB.user_id, error=HistoryCleared())

    assert isinstance((await events)[-1], ReplyStored)


# ---------------------------------------------------------------- delete / clear elsewhere


async def test_a_clear_elsewhere_discards_the_reply_and_what_the_agent_remembered(world: Chat) -> None:
    conversation_id = await world.conversation()
    world.agent.script(ScriptedTurn.reply("late answer", delay=0.05))
    turn = await start_turn(world, conversation_id)
    events = asyncio.create_task(collect(turn))
    await until_streaming(world)

    elsewhere = ClearMessages(world.db.unit_of_work, world.agent, world.clock, RunningTurns())
    await elsewhere.execute(ALICE, conversation_id)
    assert world.db.reply_claim(conversation_id) is not None  # still one reply at a time

    last = (await events)[-1]
    assert isinstance(last, ReplyFailed)
    assert isinstance(last.error, HistoryCleared)
    assert not world.agent.closed_early  # not reachable from elsewhere: it ran to its end
    assert await world.messages(conversation_id) == []  # no orphan reply
    assert world.agent.remembered(conversation_id) == []  # its end-of-run memory was forgotten
    assert world.db.reply_claim(conversation_id) is None  # released after forgetting


async def test_a_delete_elsewhere_leaves_no_agent_memory(world: Chat) -> None:
    conversation_id = await world.conversation()
    world.agent.script(ScriptedTurn.reply("late answer", delay=0.05))
    turn = await start_turn(world, conversation_id)
    events = asyncio.create_task(collect(turn))
    await until_streaming(world)

    elsewhere = DeleteConversation(world.db.unit_of_work, world.agent, RunningTurns())
    await elsewhere.execute(ALICE, conversation_id)

    last = (await events)[-1]
    assert isinstance(last, ReplyFailed)
    assert isinstance(last.error, ConversationNotFound)
    assert world.agent.remembered(conversation_id) == []


# ---------------------------------------------------------------- the database goes away


async def test_an_outage_before_the_reply_is_stored_ends_the_turn_and_stores_it_once_back(
    world: Chat,
) -> None:
    conversation_id = await world.conversation()
    world.agent.script(ScriptedTurn.reply("the answer", delay=0.01))
    turn = await start_turn(world, conversation_id)
    world.db.fail_with_unavailable = True

    last = (await collect(turn))[-1]

    assert isinstance(last, ReplyFailed)
    assert last.message is None
    assert isinstance(last.error, StorageUnavailable)
    assert len(world.deferred) == 1
    world.db.fail_with_unavailable = False
    await asyncio.wait_for(world.deferred.idle(), timeout=5)
    assert await world.messages(conversation_id) == [
        ("user", "hello", "complete"),
        ("assistant", "the answer", "failed"),  # the caller saw the turn fail
    ]
    assert world.db.reply_claim(conversation_id) is None  # the conversation is free again


async def test_an_unreachable_agent_memory_fails_the_turn_as_a_storage_error(world: Chat) -> None:
    conversation_id = await world.conversation()
    world.agent.script(ScriptedTurn.failing(StorageUnavailable("checkpoints"), events=[TokenDelta("par")]))
    turn = await start_turn(world, conversation_id)

    with pytest.raises(StorageUnavailable):
        await complete_turn(turn)

    assert await world.messages(conversation_id) == [
        ("user", "hello", "complete"),
        ("assistant", "par", "failed"),
    ]


async def test_a_client_leaving_during_an_outage_has_its_reply_stored_once_back(world: Chat) -> None:
    conversation_id = await world.conversation()
    world.agent.script(hanging_reply())
    turn = await start_turn(world, conversation_id)
    await until_streaming(world)
    world.db.fail_with_unavailable = True

    await turn.aclose()  # the client went away; storing the partial reply fails for now

    world.db.fail_with_unavailable = False
    await asyncio.wait_for(world.deferred.idle(), timeout=5)
    assert await world.messages(conversation_id) == [
        ("user", "hello", "complete"),
        ("assistant", "", "incomplete"),
    ]


# ---------------------------------------------------------------- deferred writes


async def test_deferred_writes_retry_while_the_database_is_down_then_stop() -> None:
    deferred = DeferredWrites(first_delay=0.001, max_delay=0.002)
    attempts: list[int] = []

    async def write() -> None:
        attempts.append(1)
        if len(attempts) < 3:
            raise StorageUnavailable("down")

    deferred.retry(write, within=5, what="a test write")
    await asyncio.wait_for(deferred.idle(), timeout=5)

    assert len(attempts) == 3


async def test_deferred_writes_give_up_at_their_deadline() -> None:
    deferred = DeferredWrites(first_delay=0.01, max_delay=0.01)
    attempts: list[int] = []

    async def never() -> None:
        attempts.append(1)
        raise StorageUnavailable("down for good")

    deferred.retry(never, within=0.1, what="a hopeless write")
    await asyncio.wait_for(deferred.idle(), timeout=5)

    assert 1 <= len(attempts) <= 10


async def test_closing_deferred_writes_cancels_what_is_pending() -> None:
    deferred = DeferredWrites(first_delay=60)

    async def slow() -> None:
        await asyncio.sleep(600)

    deferred.retry(slow, within=600, what="a slow write")

    await asyncio.wait_for(deferred.aclose(), timeout=5)

    assert len(deferred) == 0
