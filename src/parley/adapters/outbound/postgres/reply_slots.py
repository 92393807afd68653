"""The conversations' reply slots (:class:`parley.ports.persistence.ReplySlots`) on PostgreSQL.

Each operation is one statement on a connection of its own in autocommit (no unit of work): the
statement is atomic by itself, so it needs no BEGIN and COMMIT round trips. The conditions are
those of the domain's claim rule, :class:`parley.domain.chat.ReplySlot` (comments point at each);
the persistence contract suite runs the same tests on this adapter and on the in-memory one.
Measured when the turn's writes first became single autocommit statements: 157-164 -> 174
turns/s on the turns bench.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import (
    BindParameter,
    Select,
    and_,
    bindparam,
    case,
    func,
    insert,
    literal,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from parley.domain.approvals import PendingApproval
from parley.domain.chat import DEFAULT_CONVERSATION_NAME, Message, ReplyClaim, ReplySlot
from parley.ports.persistence import ReplyFinish, ReplyResume, ReplyStart, TitledFinish

from .mappers import (
    conversation_from_row,
    message_to_row,
    pending_approval_from_json,
    pending_approval_to_json,
)
from .statements import StatementRunner, autocommit_block
from .tables import conversations, messages


class PostgresReplySlots:
    """:class:`parley.ports.persistence.ReplySlots` on ``conversations`` (the ``reply_claim_*`` and
    ``history_version`` columns) and ``messages``."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def start_reply(
        self,
        conversation_id: UUID,
        *,
        owner_id: UUID,
        claim: ReplyClaim,
        now: datetime,
        user_message: Message,
    ) -> ReplyStart:
        """One statement claims, counts and stores the message; only a refusal costs a second one.

        The INSERT reads the claimed row's id, so it stores nothing unless the UPDATE claimed.
        Under READ COMMITTED a concurrent starter waits for the row lock, then re-checks the
        condition against the committed claim, so exactly one wins.
        """
        _check_belongs(user_message, conversation_id)
        parameters = {
            **_message_parameters(user_message),
            "p_conversation_id": conversation_id,
            "p_owner_id": owner_id,
            "p_claim_id": claim.claim_id,
            "p_now": now,
            "p_until": claim.expires_at,
        }
        async with self._statements() as runner:
            claimed = (await runner.execute(_START_REPLY, parameters)).mappings().one_or_none()
            if claimed is not None:
                version, awaits_title = claimed["history_version"], claimed["awaits_title"]
                return ReplyStart("started", history_version=version, awaits_title=awaits_title)
            owned = select(conversations.c.pending_approval.is_not(None)).where(
                conversations.c.id == conversation_id, conversations.c.user_id == owner_id
            )
            row = (await runner.read(owned)).first()
            if row is None:
                return ReplyStart("not_found")
            # ReplySlot.refusal: a live claim with an approval pending is a paused turn's.
            return ReplyStart("awaiting_approval" if row[0] else "busy")

    async def finish_reply(
        self, conversation_id: UUID, *, claim_id: UUID, history_version: int, now: datetime, reply: Message
    ) -> ReplyFinish:
        """One statement: the INSERT reads the row the UPDATE matched, so a reply lands only in the
        history version it answers; only a refusal costs a second statement (discarded or gone?).

        Counted in SQL, not read-modify-write; the slot is freed only by its holder. The version
        is checked on the row the UPDATE locks: a clear committed meanwhile is seen (READ
        COMMITTED re-checks the condition on the newest row version).
        """
        _check_belongs(reply, conversation_id)
        parameters = {
            **_message_parameters(reply),
            "p_conversation_id": conversation_id,
            "p_claim_id": claim_id,
            "p_history_version": history_version,
            "p_now": now,
        }
        async with self._statements() as runner:
            if (await runner.execute(_FINISH_REPLY, parameters)).scalar_one() == 1:
                return "stored"
            return await _discarded_or_gone(runner, conversation_id)

    async def finish_titled_reply(
        self,
        conversation_id: UUID,
        *,
        claim_id: UUID,
        history_version: int,
        now: datetime,
        reply: Message,
        title: str,
    ) -> TitledFinish:
        """:meth:`finish_reply`'s statement, also renaming a conversation still named by default
        (a CASE in the same UPDATE); it returns the conversation's row when it is named ``title``."""
        _check_belongs(reply, conversation_id)
        parameters = {
            **_message_parameters(reply),
            "p_conversation_id": conversation_id,
            "p_claim_id": claim_id,
            "p_history_version": history_version,
            "p_now": now,
            "p_title": title,
        }
        async with self._statements() as runner:
            row = (await runner.execute(_FINISH_TITLED_REPLY, parameters)).mappings().one_or_none()
            if row is not None:
                named = row["name"] == title
                return TitledFinish("stored", conversation_from_row(row) if named else None)
            return TitledFinish(await _discarded_or_gone(runner, conversation_id))

    async def release_reply(self, conversation_id: UUID, *, claim_id: UUID) -> None:
        statement = (
            update(conversations)
            # ReplySlot.released: only the holder frees the slot.
            .where(conversations.c.id == conversation_id, conversations.c.reply_claim_id == claim_id)
            .values(reply_claim_id=None, reply_claim_expires_at=None)
        )
        async with self._statements() as runner:
            await runner.execute(statement)

    async def pause_reply(
        self, conversation_id: UUID, *, claim_id: UUID, history_version: int, approval: PendingApproval
    ) -> ReplyFinish:
        """One UPDATE (ReplySlot.paused) on the row whose history is still at the version."""
        holds = conversations.c.reply_claim_id == claim_id
        statement = (
            update(conversations)
            .where(conversations.c.id == conversation_id, conversations.c.history_version == history_version)
            .values(
                reply_claim_expires_at=case(
                    (holds, approval.expires_at), else_=conversations.c.reply_claim_expires_at
                ),
                pending_approval=case(
                    (
                        holds,
                        literal(pending_approval_to_json(approval), conversations.c.pending_approval.type),
                    ),
                    else_=conversations.c.pending_approval,
                ),
            )
            .returning(conversations.c.id)
        )
        async with self._statements() as runner:
            if (await runner.execute(statement)).first() is not None:
                return "stored"
            return await _discarded_or_gone(runner, conversation_id)

    async def resume_reply(
        self, conversation_id: UUID, *, owner_id: UUID, approval_id: UUID, claim: ReplyClaim, now: datetime
    ) -> ReplyResume:
        """One UPDATE takes the slot over, returning the approval as it was (read from the
        statement's snapshot of the row); a refusal costs a second statement that reads the row
        and asks the domain's rule (ReplySlot.resume_refusal) why.

        Concurrent deciders: the second waits for the row lock, then finds no approval pending
        (READ COMMITTED re-checks the condition on the newest row version), so exactly one resumes.
        """
        before = (
            select(conversations.c.id, conversations.c.pending_approval)
            .where(conversations.c.id == conversation_id)
            .subquery("before")
        )
        statement = (
            update(conversations)
            .where(
                conversations.c.id == before.c.id,
                conversations.c.user_id == owner_id,
                # ReplySlot.resume_refusal: this approval is pending, and still open.
                conversations.c.pending_approval["id"].astext == str(approval_id),
                conversations.c.reply_claim_expires_at > now,
            )
            .values(
                reply_claim_id=claim.claim_id,
                reply_claim_expires_at=claim.expires_at,
                pending_approval=None,
                last_active_at=now,
                updated_at=now,
            )
            .returning(conversations.c.history_version, before.c.pending_approval)
        )
        async with self._statements() as runner:
            resumed = (await runner.execute(statement)).mappings().first()
            if resumed is not None:
                approval = pending_approval_from_json(resumed["pending_approval"])
                return ReplyResume("resumed", resumed["history_version"], approval)
            slot = await self._slot(runner, conversation_id)
            refusal = None if slot is None else slot.resume_refusal(owner_id, approval_id, now)
            return ReplyResume(refusal or "not_found")

    async def pending_approval(
        self, conversation_id: UUID, *, owner_id: UUID, now: datetime
    ) -> PendingApproval | None:
        async with self._statements() as runner:
            slot = await self._slot(runner, conversation_id)
        if slot is None or slot.owner_id != owner_id or slot.pending is None or not slot.pending.is_live(now):
            return None
        return slot.pending

    @staticmethod
    async def _slot(runner: StatementRunner, conversation_id: UUID) -> ReplySlot | None:
        """The conversation's reply slot as the domain sees it, or None when there is no such conversation."""
        c = conversations.c
        statement = select(
            c.user_id, c.history_version, c.reply_claim_id, c.reply_claim_expires_at, c.pending_approval
        ).where(c.id == conversation_id)
        row = (await runner.read(statement)).mappings().first()
        if row is None:
            return None
        claim = (
            None
            if row["reply_claim_id"] is None
            else ReplyClaim(row["reply_claim_id"], row["reply_claim_expires_at"])
        )
        document = row["pending_approval"]
        pending = None if document is None else pending_approval_from_json(document)
        return ReplySlot(row["user_id"], row["history_version"], claim, pending)

    @asynccontextmanager
    async def _statements(self) -> AsyncIterator[StatementRunner]:
        """A runner with no transaction: each statement commits by itself."""
        async with autocommit_block(self._engine) as connection:
            yield StatementRunner(connection)


async def _discarded_or_gone(runner: StatementRunner, conversation_id: UUID) -> ReplyFinish:
    """Why a write into the history version a turn answers matched no row: the conversation is
    still there (its history was cleared since: ``"discarded"``) or it was deleted (``"gone"``)."""
    exists = select(conversations.c.id).where(conversations.c.id == conversation_id)
    return "discarded" if (await runner.read(exists)).first() is not None else "gone"


def _check_belongs(message: Message, conversation_id: UUID) -> None:
    """A precondition of the port: the message must be one of the conversation being claimed/freed."""
    if message.conversation_id != conversation_id:
        raise ValueError(f"message {message.id} belongs to another conversation")


# The two statements of every chat turn are built once, with named parameters: SQLAlchemy
# memoizes a statement object's cache key, so reusing the object skips rebuilding the
# statement and re-deriving its key on every call (~5 % of setting a turn up, profiled).
# Parameters: p_* for the conversation, m_* for the message's columns.
_MESSAGE_COLUMNS = [c.name for c in messages.c if c.name not in ("seq", "conversation_id")]


def _message_parameters(message: Message) -> dict[str, Any]:
    row = message_to_row(message)
    return {f"m_{name}": row[name] for name in _MESSAGE_COLUMNS}


def _message_values() -> list[BindParameter[Any]]:
    return [bindparam(f"m_{name}", type_=messages.c[name].type) for name in _MESSAGE_COLUMNS]


def _start_reply_statement() -> Select[tuple[int, bool]]:
    """Claim (``UPDATE ... RETURNING id, history_version``), then ``INSERT INTO messages SELECT
    <m_*>, claimed.id FROM claimed``: a message row only if a conversation row was claimed.
    Returns the claimed history version: one row if claimed, none otherwise."""
    now = bindparam("p_now", type_=conversations.c.updated_at.type)
    claimed = (
        update(conversations)
        .where(
            conversations.c.id == bindparam("p_conversation_id", type_=conversations.c.id.type),
            conversations.c.user_id == bindparam("p_owner_id", type_=conversations.c.user_id.type),
            # ReplySlot.refusal: the owner's, and no live claim (none, or expired at or before now).
            or_(
                conversations.c.reply_claim_id.is_(None),
                conversations.c.reply_claim_expires_at <= now,
            ),
        )
        .values(
            reply_claim_id=bindparam("p_claim_id", type_=conversations.c.reply_claim_id.type),
            reply_claim_expires_at=bindparam("p_until", type_=conversations.c.reply_claim_expires_at.type),
            pending_approval=None,  # ReplySlot.started: an expired approval is dropped
            message_count=conversations.c.message_count + 1,
            last_active_at=now,
            updated_at=now,
        )
        # RETURNING sees the new row: message_count 1 means this message opens the history.
        .returning(
            conversations.c.id,
            conversations.c.history_version,
            and_(conversations.c.name == DEFAULT_CONVERSATION_NAME, conversations.c.message_count == 1).label(
                "awaits_title"
            ),  # wants_title()
        )
        .cte("claimed")
    )
    stored = (
        insert(messages)
        .from_select([*_MESSAGE_COLUMNS, "conversation_id"], select(*_message_values(), claimed.c.id))
        .cte("stored")
    )
    # PostgreSQL runs a data-modifying CTE exactly once even though nothing reads it.
    return select(claimed.c.history_version, claimed.c.awaits_title).add_cte(stored)


def _finish_reply_statement(*, titled: bool = False) -> Select[Any]:
    """``UPDATE conversations ... WHERE history_version = <p> RETURNING id``, then the INSERT
    reads that row: the reply is stored only if the version matched. Returns how many were stored.

    ``titled``: the UPDATE also sets ``name`` to ``p_title`` while it is the default name, and the
    statement returns the conversation's row when the reply was stored, no row otherwise.
    """
    now = bindparam("p_now", type_=conversations.c.updated_at.type)
    holds = conversations.c.reply_claim_id == bindparam(
        "p_claim_id", type_=conversations.c.reply_claim_id.type
    )
    target = (
        update(conversations)
        .where(
            conversations.c.id == bindparam("p_conversation_id", type_=conversations.c.id.type),
            # ReplySlot.accepts_reply: the history is still the version the reply answers.
            conversations.c.history_version
            == bindparam("p_history_version", type_=conversations.c.history_version.type),
        )
        .values(
            message_count=conversations.c.message_count + 1,
            last_active_at=now,
            updated_at=now,
            # ReplySlot.released: only the holder frees the slot.
            reply_claim_id=case((holds, None), else_=conversations.c.reply_claim_id),
            reply_claim_expires_at=case((holds, None), else_=conversations.c.reply_claim_expires_at),
            **_renamed_while_default() if titled else {},
        )
        .returning(*(_CONVERSATION_COLUMNS if titled else [conversations.c.id]))
        .cte("target")
    )
    stored = (
        insert(messages)
        .from_select([*_MESSAGE_COLUMNS, "conversation_id"], select(*_message_values(), target.c.id))
        .returning(literal_column("1"))
        .cte("stored")
    )
    if not titled:
        return select(func.count()).select_from(stored)
    # The INSERT reads the row the UPDATE matched: a row here means the reply was stored too.
    return select(*(target.c[c.name] for c in _CONVERSATION_COLUMNS)).add_cte(stored)


def _renamed_while_default() -> dict[str, Any]:
    title = bindparam("p_title", type_=conversations.c.name.type)
    return {
        "name": case((conversations.c.name == DEFAULT_CONVERSATION_NAME, title), else_=conversations.c.name)
    }


_CONVERSATION_COLUMNS = [
    c for c in conversations.c if not c.name.startswith("reply_claim") and c.name != "history_version"
]
_START_REPLY = _start_reply_statement()
_FINISH_REPLY = _finish_reply_statement()
_FINISH_TITLED_REPLY = _finish_reply_statement(titled=True)
