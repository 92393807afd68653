"""Turns that pause for the user's approval of a tool call, in the application layer: in-memory
reply slots, a scripted agent, a clock that moves only when told (so expiry needs no waiting)."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

import pytest

from parley.application.chat.sending import DecisionInput, GetPendingApproval, ResumeTurn, complete_turn
from parley.application.chat.turns import ApprovalAwaited
from parley.application.memory import UserMemory
from parley.domain.approvals import EditArguments, Reject
from parley.domain.errors import (
    ApprovalExpired,
    ApprovalNotFound,
    ApprovalPending,
    ConversationNotFound,
    ValidationFailed,
)
from parley.ports.agent import ApprovalRequested, TokenDelta, Usage
from tests.fakes.agent import SCRIPTED_MODEL, ScriptedTurn
from tests.fakes.memory import InMemoryMemoryStore, ScriptedFactExtractor
from tests.unit.chat_world import ALICE, BOB, Chat, chat_world

ASKS = ScriptedTurn(
    events=[
        TokenDelta("Let me check. "),
        Usage(SCRIPTED_MODEL, prompt_tokens=5, completion_tokens=3),
        ApprovalRequested("calculator", {"expression": "6 * 7"}),
    ]
)


async def _paused(chat: Chat) -> tuple[UUID, ApprovalAwaited]:
    conversation = await chat.conversation()
    chat.agent.script(ASKS)
    exchange = await complete_turn(await chat.take_turn().execute(ALICE, conversation, "What is 6 * 7?"))
    assert exchange.approval is not None
    pending = await GetPendingApproval(chat.db.reply_slots, chat.clock).execute(ALICE, conversation)
    return conversation, ApprovalAwaited(pending, 5, 3)


async def test_a_paused_turn_stores_no_reply_and_holds_the_session_until_its_approval_expires() -> None:
    chat = await chat_world()
    conversation, paused = await _paused(chat)

    assert paused.approval.tool == "calculator"
    assert paused.approval.reply_so_far == "Let me check. "
    assert paused.approval.expires_at - paused.approval.requested_at == timedelta(hours=1)
    assert await chat.messages(conversation) == [("user", "What is 6 * 7?", "complete")]
    assert chat.tracer.last_turn.ended is not None
    assert chat.tracer.last_turn.ended.status == "awaiting_approval"
    chat.clock.advance(timedelta(minutes=59))
    with pytest.raises(ApprovalPending):
        await chat.take_turn().execute(ALICE, conversation, "hello?")

    chat.clock.advance(timedelta(minutes=1))
    with pytest.raises(ApprovalExpired):
        await ResumeTurn(chat.services()).execute(
            ALICE, conversation, paused.approval.id, DecisionInput("approve")
        )
    turn = await chat.take_turn().execute(ALICE, conversation, "never mind")  # the session is free again
    await complete_turn(turn)
    with pytest.raises(ApprovalNotFound):
        await ResumeTurn(chat.services()).execute(
            ALICE, conversation, paused.approval.id, DecisionInput("approve")
        )


async def test_the_resumed_reply_starts_with_what_the_paused_turn_said() -> None:
    chat = await chat_world()
    conversation, paused = await _paused(chat)
    chat.agent.script(ScriptedTurn.reply("It is 4."))

    decision = DecisionInput("edit", arguments={"expression": "2 + 2"})
    turn = await ResumeTurn(chat.services()).execute(ALICE, conversation, paused.approval.id, decision)
    exchange = await complete_turn(turn)

    assert exchange.message is None
    assert exchange.reply is not None
    assert exchange.reply.content == "Let me check. It is 4."
    assert chat.agent.resumes[-1].decision == EditArguments({"expression": "2 + 2"})
    assert chat.agent.resumes[-1].stream_tokens is True
    assert await chat.messages(conversation) == [
        ("user", "What is 6 * 7?", "complete"),
        ("assistant", "Let me check. It is 4.", "complete"),
    ]
    assert chat.tracer.last_turn.started.input_text == "approved calculator with edited arguments"


async def test_a_decision_is_checked_before_anything_changes() -> None:
    chat = await chat_world()
    conversation, paused = await _paused(chat)
    resume = ResumeTurn(chat.services())

    with pytest.raises(ValidationFailed):
        await resume.execute(ALICE, conversation, paused.approval.id, DecisionInput("edit"))
    with pytest.raises(ValidationFailed):
        await resume.execute(
            ALICE, conversation, paused.approval.id, DecisionInput("reject", reason="x" * 2001)
        )
    with pytest.raises(ConversationNotFound):
        await resume.execute(BOB, conversation, paused.approval.id, DecisionInput("approve"))
    with pytest.raises(ApprovalNotFound):
        await GetPendingApproval(chat.db.reply_slots, chat.clock).execute(BOB, conversation)

    chat.agent.script(ScriptedTurn.reply("Fine."))
    turn = await resume.execute(ALICE, conversation, paused.approval.id, DecisionInput("reject", reason="no"))
    await complete_turn(turn)
    assert chat.agent.resumes == [chat.agent.resumes[0]]  # the refused decisions never reached the agent
    assert chat.agent.resumes[0].decision == Reject("no")


async def test_a_paused_message_is_learnt_from_and_the_resumed_turn_is_given_the_users_facts() -> None:
    chat = await chat_world()
    extractor = ScriptedFactExtractor(["The user's name is Ada"])
    chat.memory = UserMemory(InMemoryMemoryStore(), extractor, delay=0)
    conversation, paused = await _paused(chat)
    await chat.memory.idle()

    chat.agent.script(ScriptedTurn.reply("Done."))
    turn = await ResumeTurn(chat.services()).execute(
        ALICE, conversation, paused.approval.id, DecisionInput("approve")
    )
    await complete_turn(turn)

    assert extractor.seen == [["What is 6 * 7?"]]  # learnt once, from the question; nothing from the decision
    assert chat.agent.resumes[-1].memories == ("The user's name is Ada",)
