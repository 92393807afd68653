"""One behaviour suite for the UnitOfWork, its four repositories and the ReplySlots.

Runs against the in-memory fake and the PostgreSQL adapter (a fresh, migrated database
per module). Tests share that store, so each one builds its own users with unique e-mails.
The reply-slot tests are where both adapters are shown to follow the domain's claim rule
(:class:`parley.domain.chat.ReplySlot`).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import count

import pytest

from parley.adapters.outbound.postgres.engine import create_engine
from parley.adapters.outbound.postgres.migrate import upgrade_to_head
from parley.adapters.outbound.postgres.reply_slots import PostgresReplySlots
from parley.adapters.outbound.postgres.unit_of_work import postgres_unit_of_work_factory
from parley.domain.approvals import PendingApproval
from parley.domain.auth import AuthSession
from parley.domain.chat import (
    Conversation,
    ConversationCursor,
    Message,
    MessageRole,
    MessageStatus,
    ReplyClaim,
)
from parley.domain.errors import EmailAlreadyRegistered
from parley.domain.users import Email, User
from parley.ports.persistence import (
    ReplyFinish,
    ReplyResume,
    ReplySlots,
    ReplyStart,
    StorageUnavailable,
    UnitOfWork,
    UnitOfWorkFactory,
)
from tests.fakes.persistence import InMemoryDatabase

pytestmark = pytest.mark.contract

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
_serial = count()


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def migrated_url(create_database: Callable[[], str]) -> str:
    url = create_database()
    upgrade_to_head(url)
    return url


@dataclass(frozen=True)
class Store:
    """One adapter's unit of work and reply slots, over the same data."""

    uow: UnitOfWorkFactory
    slots: ReplySlots


@pytest.fixture(scope="module", params=["in_memory", "postgres"])
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    if request.param == "in_memory":
        database = InMemoryDatabase()
        yield Store(database.unit_of_work, database.reply_slots)
        return
    engine = create_engine(
        request.getfixturevalue("migrated_url"), pool_size=5, max_overflow=5, pool_timeout=5
    )
    try:
        yield Store(postgres_unit_of_work_factory(engine), PostgresReplySlots(engine))
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def uow_factory(backend: Store) -> UnitOfWorkFactory:
    return backend.uow


@pytest.fixture(scope="module")
def reply_slots(backend: Store) -> ReplySlots:
    return backend.slots


# ---------------------------------------------------------------- builders


def new_user(email: str | None = None) -> User:
    address = email or f"user{next(_serial)}-{uuid.uuid4().hex[:8]}@example.com"
    parsed = Email.parse(address)
    return User(id=uuid.uuid4(), email=parsed, password_hash="hash", created_at=T0, updated_at=T0)


def new_auth_session(user: User, *, expires_at: datetime = T0 + timedelta(days=7)) -> AuthSession:
    return AuthSession(
        id=uuid.uuid4(), user_id=user.id, refresh_token_id=uuid.uuid4(), created_at=T0, expires_at=expires_at
    )


def new_conversation(user: User, *, last_active_at: datetime = T0, name: str = "New chat") -> Conversation:
    return Conversation(
        id=uuid.uuid4(),
        user_id=user.id,
        name=name,
        created_at=T0,
        updated_at=T0,
        last_active_at=last_active_at,
    )


def new_message(conversation: Conversation, content: str, *, role: MessageRole = MessageRole.USER) -> Message:
    # Same created_at for all: the order must come from insertion, not from the clock.
    return Message(
        id=uuid.uuid4(),
        conversation_id=conversation.id,
        role=role,
        content=content,
        status=MessageStatus.COMPLETE,
        created_at=T0,
    )


async def store(uow_factory: UnitOfWorkFactory, *entities: object) -> None:
    """Add and commit entities (users before what they own)."""
    async with uow_factory() as uow:
        for entity in entities:
            await _add(uow, entity)
        await uow.commit()


async def _add(uow: UnitOfWork, entity: object) -> None:
    match entity:
        case User():
            await uow.users.add(entity)
        case AuthSession():
            await uow.auth_sessions.add(entity)
        case Conversation():
            await uow.conversations.add(entity)
        case _:
            raise TypeError(entity)


async def seed_history(reply_slots: ReplySlots, conversation: Conversation, messages: list[Message]) -> None:
    """Store ``messages`` as turns do: a user message starts a reply (claiming the slot), the
    assistant message after it finishes the reply (freeing the slot)."""
    claim_id, version = uuid.uuid4(), 0
    for message in messages:
        if message.role is MessageRole.USER:
            claim_id = uuid.uuid4()
            started = await reply_slots.start_reply(
                conversation.id,
                owner_id=conversation.user_id,
                claim=ReplyClaim(claim_id, expires_at=T0 + timedelta(minutes=2)),
                now=T0,
                user_message=message,
            )
            assert started.outcome == "started"
            version = started.history_version
        else:
            finished = await reply_slots.finish_reply(
                conversation.id, claim_id=claim_id, history_version=version, now=T0, reply=message
            )
            assert finished == "stored"


async def load_user(uow_factory: UnitOfWorkFactory, user_id: uuid.UUID) -> User | None:
    async with uow_factory() as uow:
        return await uow.users.get(user_id)


async def load_conversation(
    uow_factory: UnitOfWorkFactory, conversation: Conversation
) -> Conversation | None:
    async with uow_factory() as uow:
        return await uow.conversations.get(conversation.id, owner_id=conversation.user_id)


# ---------------------------------------------------------------- unit of work


async def test_committed_changes_are_visible_to_later_units_of_work(uow_factory: UnitOfWorkFactory) -> None:
    user = new_user()
    await store(uow_factory, user)

    assert await load_user(uow_factory, user.id) == user


async def test_leaving_without_commit_discards_changes(uow_factory: UnitOfWorkFactory) -> None:
    user = new_user()
    async with uow_factory() as uow:
        await uow.users.add(user)
        assert await uow.users.get(user.id) == user  # visible inside its own transaction

    assert await load_user(uow_factory, user.id) is None


async def test_an_exception_in_the_block_rolls_back_and_propagates(uow_factory: UnitOfWorkFactory) -> None:
    user = new_user()

    async def add_then_fail() -> None:
        async with uow_factory() as uow:
            await uow.users.add(user)
            raise LookupError("boom")

    with pytest.raises(LookupError):
        await add_then_fail()

    assert await load_user(uow_factory, user.id) is None


async def test_rollback_discards_pending_work_and_later_work_still_commits(
    uow_factory: UnitOfWorkFactory,
) -> None:
    discarded, kept = new_user(), new_user()
    async with uow_factory() as uow:
        await uow.users.add(discarded)
        await uow.rollback()
        await uow.users.add(kept)
        await uow.commit()

    assert await load_user(uow_factory, discarded.id) is None
    assert await load_user(uow_factory, kept.id) == kept


async def test_uncommitted_changes_are_invisible_to_a_concurrent_unit_of_work(
    uow_factory: UnitOfWorkFactory,
) -> None:
    user = new_user()
    async with uow_factory() as writer:
        await writer.users.add(user)
        assert await load_user(uow_factory, user.id) is None
        await writer.commit()

    assert await load_user(uow_factory, user.id) == user


async def test_returned_entities_are_detached_copies(uow_factory: UnitOfWorkFactory) -> None:
    user = new_user()
    await store(uow_factory, user)
    async with uow_factory() as uow:
        loaded = await uow.users.get(user.id)
        assert loaded is not None
        loaded.password_hash = "changed without update"
        await uow.commit()

    stored = await load_user(uow_factory, user.id)
    assert stored is not None
    assert stored.password_hash == "hash"


# ---------------------------------------------------------------- users


async def test_a_unit_of_work_that_only_reads_reads_committed_data(uow_factory: UnitOfWorkFactory) -> None:
    user = new_user()
    await store(uow_factory, user)

    async with uow_factory() as uow:
        found = await uow.users.get_by_email(user.email)

    assert found is not None
    assert found.id == user.id


async def test_a_unit_of_work_that_only_read_leaves_later_ones_transactional(
    uow_factory: UnitOfWorkFactory,
) -> None:
    """Whatever a unit of work that only reads skips, the next one is a transaction again."""
    for _ in range(3):  # enough to hand every pooled connection through a read-only use
        async with uow_factory() as uow:
            await uow.users.get(uuid.uuid4())
    user = new_user()

    async with uow_factory() as uow:
        await uow.users.add(user)
        # leaving without commit

    assert await load_user(uow_factory, user.id) is None


async def test_a_write_after_reads_is_undone_when_the_block_is_left_without_commit(
    uow_factory: UnitOfWorkFactory,
) -> None:
    reader, user = new_user(), new_user()
    await store(uow_factory, reader)

    async with uow_factory() as uow:
        assert await uow.users.get(reader.id) == reader
        assert await uow.users.get_by_email(user.email) is None
        await uow.users.add(user)
        assert await uow.users.get(user.id) == user  # visible inside its own transaction
        assert await load_user(uow_factory, user.id) is None  # and to no one else
        # leaving without commit

    assert await load_user(uow_factory, user.id) is None


async def test_a_write_after_reads_is_undone_when_the_block_fails(uow_factory: UnitOfWorkFactory) -> None:
    user = new_user()

    async def read_write_then_fail() -> None:
        async with uow_factory() as uow:
            assert await uow.users.get(user.id) is None
            await uow.users.add(user)
            raise LookupError("boom")

    with pytest.raises(LookupError):
        await read_write_then_fail()

    assert await load_user(uow_factory, user.id) is None


async def test_rollback_after_reads_undoes_the_writes_and_reads_still_work(
    uow_factory: UnitOfWorkFactory,
) -> None:
    kept, discarded = new_user(), new_user()
    await store(uow_factory, kept)

    async with uow_factory() as uow:
        assert await uow.users.get(kept.id) == kept
        await uow.users.add(discarded)
        await uow.rollback()
        assert await uow.users.get(discarded.id) is None
        assert await uow.users.get(kept.id) == kept

    assert await load_user(uow_factory, discarded.id) is None


async def test_a_taken_email_after_reads_is_refused_and_stores_nothing(
    uow_factory: UnitOfWorkFactory,
) -> None:
    taken = new_user()
    await store(uow_factory, taken)
    rival = new_user(taken.email.value)

    async def register_rival() -> None:
        async with uow_factory() as uow:
            assert await uow.users.get(rival.id) is None
            await uow.users.add(rival)
            await uow.commit()

    with pytest.raises(EmailAlreadyRegistered):
        await register_rival()

    assert await load_user(uow_factory, rival.id) is None


async def test_reply_slot_calls_leave_later_units_of_work_transactional(
    uow_factory: UnitOfWorkFactory, reply_slots: ReplySlots
) -> None:
    """The reply slots write without a transaction; the connections they used must not stay so."""
    owner = new_user()
    conversation = new_conversation(owner)
    await store(uow_factory, owner, conversation)
    for _ in range(3):  # enough to hand every pooled connection through a reply-slot call
        await reply_slots.release_reply(conversation.id, claim_id=uuid.uuid4())
    user = new_user()

    async with uow_factory() as uow:
        await uow.users.add(user)
        # leaving without commit

    assert await load_user(uow_factory, user.id) is None


async def test_users_are_found_by_email(uow_factory: UnitOfWorkFactory) -> None:
    user = new_user()
    await store(uow_factory, user)

    async with uow_factory() as uow:
        assert await uow.users.get_by_email(user.email) == user
        assert await uow.users.get_by_email(Email.parse("nobody@example.com")) is None


async def test_unknown_user_id_gives_none(uow_factory: UnitOfWorkFactory) -> None:
    assert await load_user(uow_factory, uuid.uuid4()) is None


async def test_timestamps_come_back_as_utc_aware_datetimes(uow_factory: UnitOfWorkFactory) -> None:
    user = new_user()
    await store(uow_factory, user)

    loaded = await load_user(uow_factory, user.id)
    assert loaded is not None
    assert loaded.created_at.utcoffset() == timedelta(0)
    assert loaded.created_at == T0


async def test_registering_a_taken_email_raises_and_keeps_the_first_account(
    uow_factory: UnitOfWorkFactory,
) -> None:
    first = new_user()
    await store(uow_factory, first)
    second = new_user(email=f"  {first.email.value.upper()} ")  # normalised by Email.parse

    with pytest.raises(EmailAlreadyRegistered):
        await store(uow_factory, second)

    assert await load_user(uow_factory, second.id) is None
    assert await load_user(uow_factory, first.id) == first


async def test_a_taken_email_leaves_the_transaction_usable(uow_factory: UnitOfWorkFactory) -> None:
    first, other = new_user(), new_user()
    await store(uow_factory, first)

    async with uow_factory() as uow:
        with pytest.raises(EmailAlreadyRegistered):
            await uow.users.add(new_user(email=first.email.value))
        await uow.users.add(other)
        await uow.commit()

    assert await load_user(uow_factory, other.id) == other


async def test_changing_email_to_a_taken_one_raises(uow_factory: UnitOfWorkFactory) -> None:
    taken, mover = new_user(), new_user()
    await store(uow_factory, taken, mover)
    mover.email = taken.email

    async def save_mover() -> None:
        async with uow_factory() as uow:
            await uow.users.update(mover)
            await uow.commit()

    with pytest.raises(EmailAlreadyRegistered):
        await save_mover()
    stored = await load_user(uow_factory, mover.id)
    assert stored is not None
    assert stored.email != taken.email


async def test_update_persists_email_password_hash_and_updated_at(uow_factory: UnitOfWorkFactory) -> None:
    user = new_user()
    await store(uow_factory, user)
    user.email = Email.parse(f"renamed-{uuid.uuid4().hex[:8]}@example.com")
    user.password_hash = "new-hash"
    user.updated_at = T0 + timedelta(hours=1)

    async with uow_factory() as uow:
        await uow.users.update(user)
        await uow.commit()

    assert await load_user(uow_factory, user.id) == user


async def test_deleting_a_user_cascades_to_everything_they_own(
    uow_factory: UnitOfWorkFactory, reply_slots: ReplySlots
) -> None:
    user, bystander = new_user(), new_user()
    auth_session, conversation = new_auth_session(user), new_conversation(user)
    kept_conversation = new_conversation(bystander)
    await store(uow_factory, user, bystander, auth_session, conversation, kept_conversation)
    await seed_history(reply_slots, conversation, [new_message(conversation, "hello")])

    async with uow_factory() as uow:
        await uow.users.delete(user.id)
        await uow.commit()

    async with uow_factory() as uow:
        assert await uow.users.get(user.id) is None
        assert await uow.auth_sessions.get(auth_session.id) is None
        assert await uow.conversations.get(conversation.id, owner_id=user.id) is None
        assert (await uow.messages.page(conversation.id, limit=10, before=None)).items == []
        assert await uow.conversations.get(kept_conversation.id, owner_id=bystander.id) is not None


# ---------------------------------------------------------------- auth sessions


async def test_auth_session_round_trip_and_update(uow_factory: UnitOfWorkFactory) -> None:
    user = new_user()
    auth_session = new_auth_session(user)
    await store(uow_factory, user, auth_session)
    auth_session.refresh_token_id = uuid.uuid4()
    auth_session.revoked_at = T0 + timedelta(minutes=5)

    async with uow_factory() as uow:
        await uow.auth_sessions.update(auth_session)
        await uow.commit()

    async with uow_factory() as uow:
        assert await uow.auth_sessions.get(auth_session.id, for_update=True) == auth_session
        assert await uow.auth_sessions.get(uuid.uuid4()) is None


async def test_revoke_all_for_user_spares_the_excepted_and_inactive_sessions(
    uow_factory: UnitOfWorkFactory,
) -> None:
    user, other = new_user(), new_user()
    current, second, third = new_auth_session(user), new_auth_session(user), new_auth_session(user)
    expired = new_auth_session(user, expires_at=T0 - timedelta(seconds=1))
    already = new_auth_session(user)
    already.revoked_at = T0 - timedelta(hours=1)
    foreign = new_auth_session(other)
    await store(uow_factory, user, other, current, second, third, expired, already, foreign)
    now = T0 + timedelta(minutes=1)

    async with uow_factory() as uow:
        revoked = await uow.auth_sessions.revoke_all_for_user(user.id, now, except_session_id=current.id)
        await uow.commit()

    assert revoked == 2
    async with uow_factory() as uow:
        states = {s.id: s.revoked_at for s in [current, second, third, expired, already, foreign]}
        for session_id in states:
            loaded = await uow.auth_sessions.get(session_id)
            assert loaded is not None
            states[session_id] = loaded.revoked_at
    assert states == {
        current.id: None,
        second.id: now,
        third.id: now,
        expired.id: None,
        already.id: T0 - timedelta(hours=1),
        foreign.id: None,
    }


async def test_revoke_all_for_user_without_exception_revokes_every_active_session(
    uow_factory: UnitOfWorkFactory,
) -> None:
    user = new_user()
    sessions = [new_auth_session(user) for _ in range(3)]
    await store(uow_factory, user, *sessions)

    async with uow_factory() as uow:
        assert await uow.auth_sessions.revoke_all_for_user(user.id, T0) == 3
        assert await uow.auth_sessions.revoke_all_for_user(user.id, T0) == 0
        await uow.commit()


# ---------------------------------------------------------------- conversations


async def test_a_conversation_is_only_found_by_its_owner(uow_factory: UnitOfWorkFactory) -> None:
    owner, stranger = new_user(), new_user()
    conversation = new_conversation(owner, name="Plans")
    await store(uow_factory, owner, stranger, conversation)

    async with uow_factory() as uow:
        assert await uow.conversations.get(conversation.id, owner_id=owner.id) == conversation
        assert await uow.conversations.get(conversation.id, owner_id=stranger.id) is None
        assert await uow.conversations.get(uuid.uuid4(), owner_id=owner.id) is None


async def test_list_for_owner_pages_newest_first_with_ties_broken_by_id(
    uow_factory: UnitOfWorkFactory,
) -> None:
    owner, stranger = new_user(), new_user()
    tied = [new_conversation(owner, last_active_at=T0) for _ in range(3)]
    older = new_conversation(owner, last_active_at=T0 - timedelta(hours=1))
    newest = new_conversation(owner, last_active_at=T0 + timedelta(hours=1))
    await store(uow_factory, owner, stranger, *tied, older, newest, new_conversation(stranger))
    expected = [newest.id, *sorted((c.id for c in tied), reverse=True), older.id]

    seen: list[uuid.UUID] = []
    cursor: ConversationCursor | None = None
    async with uow_factory() as uow:
        for _ in range(3):
            page = await uow.conversations.list_for_owner(owner.id, limit=2, after=cursor)
            seen.extend(c.id for c in page.items)
            cursor = page.next_cursor
        assert await uow.conversations.ids_for_owner(owner.id) == expected

    assert seen == expected
    assert cursor is None


async def test_list_for_owner_has_no_next_cursor_when_everything_fits(uow_factory: UnitOfWorkFactory) -> None:
    owner = new_user()
    conversations = [new_conversation(owner, last_active_at=T0 + timedelta(minutes=i)) for i in range(2)]
    await store(uow_factory, owner, *conversations)

    async with uow_factory() as uow:
        page = await uow.conversations.list_for_owner(owner.id, limit=2, after=None)

    assert [c.id for c in page.items] == [conversations[1].id, conversations[0].id]
    assert page.next_cursor is None


async def test_rename_changes_name_and_updated_at(uow_factory: UnitOfWorkFactory) -> None:
    owner = new_user()
    conversation = new_conversation(owner)
    await store(uow_factory, owner, conversation)
    later = T0 + timedelta(minutes=3)

    async with uow_factory() as uow:
        await uow.conversations.rename(conversation.id, "Renamed", later)
        await uow.commit()

    loaded = await load_conversation(uow_factory, conversation)
    assert loaded is not None
    assert (loaded.name, loaded.updated_at, loaded.last_active_at) == ("Renamed", later, T0)


async def test_reply_counts_add_up_across_units_of_work(
    uow_factory: UnitOfWorkFactory, reply_slots: ReplySlots
) -> None:
    owner = new_user()
    conversation = new_conversation(owner)
    await store(uow_factory, owner, conversation)
    later = T0 + timedelta(minutes=5)
    claim_id = uuid.uuid4()
    assert await start(reply_slots, conversation, claim_id, T0) == "started"

    await asyncio.gather(*(finish(reply_slots, conversation, claim_id, later) for _ in range(2)))

    loaded = await load_conversation(uow_factory, conversation)
    assert loaded is not None
    assert (loaded.message_count, loaded.last_active_at, loaded.updated_at) == (3, later, later)


async def test_starting_a_reply_counts_the_message_and_moves_the_activity(
    uow_factory: UnitOfWorkFactory,
    reply_slots: ReplySlots,
) -> None:
    owner = new_user()
    conversation = new_conversation(owner)
    await store(uow_factory, owner, conversation)
    later = T0 + timedelta(minutes=1)

    assert await start(reply_slots, conversation, uuid.uuid4(), later) == "started"

    loaded = await load_conversation(uow_factory, conversation)
    assert loaded is not None
    assert (loaded.message_count, loaded.last_active_at, loaded.updated_at) == (1, later, later)


async def test_clearing_the_history_deletes_its_messages_and_sets_the_count_to_zero(
    uow_factory: UnitOfWorkFactory,
    reply_slots: ReplySlots,
) -> None:
    owner = new_user()
    conversation = new_conversation(owner)
    await store(uow_factory, owner, conversation)
    claim_id = uuid.uuid4()
    assert await start(reply_slots, conversation, claim_id, T0) == "started"
    assert await finish(reply_slots, conversation, claim_id, T0) == "stored"
    later = T0 + timedelta(minutes=1)

    await clear_history(uow_factory, conversation, later)

    loaded = await load_conversation(uow_factory, conversation)
    assert loaded is not None
    assert (loaded.message_count, loaded.updated_at) == (0, later)
    assert await history(uow_factory, conversation) == []


async def test_clearing_one_history_leaves_the_others(
    uow_factory: UnitOfWorkFactory, reply_slots: ReplySlots
) -> None:
    cleared = await stored_conversation(uow_factory, reply_slots, ["a", "b"])
    kept = await stored_conversation(uow_factory, reply_slots, ["c"])

    async with uow_factory() as uow:
        await uow.conversations.clear_history(cleared[0].conversation_id, T0)
        await uow.commit()

    async with uow_factory() as uow:
        assert (await uow.messages.page(cleared[0].conversation_id, limit=5, before=None)).items == []
        assert (await uow.messages.page(kept[0].conversation_id, limit=5, before=None)).items == kept


async def test_deleting_a_conversation_removes_its_messages(
    uow_factory: UnitOfWorkFactory, reply_slots: ReplySlots
) -> None:
    owner = new_user()
    conversation = new_conversation(owner)
    await store(uow_factory, owner, conversation)
    await seed_history(reply_slots, conversation, [new_message(conversation, "hi")])

    async with uow_factory() as uow:
        await uow.conversations.delete(conversation.id)
        await uow.commit()

    async with uow_factory() as uow:
        assert await uow.conversations.get(conversation.id, owner_id=owner.id) is None
        assert await uow.conversations.ids_for_owner(owner.id) == []
        assert (await uow.messages.page(conversation.id, limit=5, before=None)).items == []


# ---------------------------------------------------------------- naming after the first exchange


async def test_rename_if_named_applies_only_while_the_name_is_the_expected_one(
    uow_factory: UnitOfWorkFactory,
) -> None:
    owner = new_user()
    untouched, renamed_by_user = new_conversation(owner), new_conversation(owner)
    await store(uow_factory, owner, untouched, renamed_by_user)
    later = T0 + timedelta(minutes=2)
    async with uow_factory() as uow:
        await uow.conversations.rename(renamed_by_user.id, "Mine", T0)
        await uow.commit()

    async with uow_factory() as uow:
        applied = await uow.conversations.rename_if_named(
            untouched.id, expected="New chat", name="Trip to Lisbon", now=later
        )
        refused = await uow.conversations.rename_if_named(
            renamed_by_user.id, expected="New chat", name="Trip to Lisbon", now=later
        )
        unknown = await uow.conversations.rename_if_named(
            uuid.uuid4(), expected="New chat", name="Trip to Lisbon", now=later
        )
        await uow.commit()

    assert (applied, refused, unknown) == (True, False, False)
    first = await load_conversation(uow_factory, untouched)
    second = await load_conversation(uow_factory, renamed_by_user)
    assert first is not None
    assert second is not None
    assert (first.name, first.updated_at) == ("Trip to Lisbon", later)
    assert (second.name, second.updated_at) == ("Mine", T0)


async def test_a_start_says_whether_the_conversation_awaits_its_title(
    uow_factory: UnitOfWorkFactory, reply_slots: ReplySlots
) -> None:
    owner = new_user()
    fresh, named = new_conversation(owner), new_conversation(owner, name="Named")
    await store(uow_factory, owner, fresh, named)

    async def started(conversation: Conversation) -> ReplyStart:
        claim_id = uuid.uuid4()
        outcome = await reply_slots.start_reply(
            conversation.id,
            owner_id=owner.id,
            claim=ReplyClaim.taken(claim_id, now=T0, ttl=timedelta(minutes=2)),
            now=T0,
            user_message=new_message(conversation, "q"),
        )
        version = outcome.history_version
        assert await finish(reply_slots, conversation, claim_id, T0, history_version=version) == "stored"
        return outcome

    first, second, of_named = await started(fresh), await started(fresh), await started(named)
    await clear_history(uow_factory, fresh, T0)
    after_clear = await started(fresh)

    assert [r.awaits_title for r in (first, second, of_named)] == [True, False, False]
    assert (after_clear.outcome, after_clear.awaits_title) == ("started", True)


async def test_a_titled_finish_stores_the_reply_and_names_a_default_named_conversation(
    uow_factory: UnitOfWorkFactory, reply_slots: ReplySlots
) -> None:
    owner = new_user()
    conversation = new_conversation(owner)
    await store(uow_factory, owner, conversation)
    claim_id, later = uuid.uuid4(), T0 + timedelta(seconds=5)
    question, answer = new_message(conversation, "question"), new_reply(conversation, "answer")
    assert await start(reply_slots, conversation, claim_id, T0, message=question) == "started"

    finished = await reply_slots.finish_titled_reply(
        conversation.id, claim_id=claim_id, history_version=0, now=later, reply=answer, title="A question"
    )

    assert finished.outcome == "stored"
    assert finished.renamed is not None
    loaded = await load_conversation(uow_factory, conversation)
    assert loaded == finished.renamed
    assert (loaded.name, loaded.message_count, loaded.updated_at) == ("A question", 2, later)
    assert await history(uow_factory, conversation) == [question, answer]
    assert await start(reply_slots, conversation, uuid.uuid4(), later) == "started"  # slot freed


async def test_a_titled_finish_keeps_a_name_given_meanwhile(
    uow_factory: UnitOfWorkFactory, reply_slots: ReplySlots
) -> None:
    owner = new_user()
    conversation = new_conversation(owner)
    await store(uow_factory, owner, conversation)
    claim_id = uuid.uuid4()
    assert await start(reply_slots, conversation, claim_id, T0) == "started"
    async with uow_factory() as uow:
        await uow.conversations.rename(conversation.id, "Mine", T0)
        await uow.commit()

    finished = await reply_slots.finish_titled_reply(
        conversation.id,
        claim_id=claim_id,
        history_version=0,
        now=T0,
        reply=new_reply(conversation, "a"),
        title="T",
    )

    assert (finished.outcome, finished.renamed) == ("stored", None)
    loaded = await load_conversation(uow_factory, conversation)
    assert loaded is not None
    assert (loaded.name, loaded.message_count) == ("Mine", 2)


async def test_a_titled_finish_of_a_cleared_or_deleted_conversation_renames_nothing(
    uow_factory: UnitOfWorkFactory, reply_slots: ReplySlots
) -> None:
    owner = new_user()
    cleared, deleted = new_conversation(owner), new_conversation(owner)
    await store(uow_factory, owner, cleared, deleted)
    claims = {c.id: uuid.uuid4() for c in (cleared, deleted)}
    for conversation in (cleared, deleted):
        assert await start(reply_slots, conversation, claims[conversation.id], T0) == "started"
    await clear_history(uow_factory, cleared, T0)
    async with uow_factory() as uow:
        await uow.conversations.delete(deleted.id)
        await uow.commit()

    outcomes = [
        await reply_slots.finish_titled_reply(
            c.id, claim_id=claims[c.id], history_version=0, now=T0, reply=new_reply(c, "a"), title="T"
        )
        for c in (cleared, deleted)
    ]

    assert [(f.outcome, f.renamed) for f in outcomes] == [("discarded", None), ("gone", None)]
    loaded = await load_conversation(uow_factory, cleared)
    assert loaded is not None
    assert (loaded.name, loaded.message_count) == ("New chat", 0)


# ---------------------------------------------------------------- reply claims


def new_reply(conversation: Conversation, content: str) -> Message:
    return new_message(conversation, content, role=MessageRole.ASSISTANT)


async def start(
    reply_slots: ReplySlots,
    conversation: Conversation,
    claim_id: uuid.UUID,
    now: datetime,
    *,
    owner_id: uuid.UUID | None = None,
    message: Message | None = None,
) -> str:
    """``start_reply`` with a claim for two minutes, as a chat turn runs it; its outcome."""
    started = await reply_slots.start_reply(
        conversation.id,
        owner_id=owner_id or conversation.user_id,
        claim=ReplyClaim.taken(claim_id, now=now, ttl=timedelta(minutes=2)),
        now=now,
        user_message=message or new_message(conversation, "question"),
    )
    return started.outcome


async def finish(
    reply_slots: ReplySlots,
    conversation: Conversation,
    claim_id: uuid.UUID,
    now: datetime,
    *,
    reply: Message | None = None,
    history_version: int = 0,
) -> ReplyFinish:
    """``finish_reply``, as a chat turn runs it."""
    return await reply_slots.finish_reply(
        conversation.id,
        claim_id=claim_id,
        history_version=history_version,
        now=now,
        reply=reply or new_reply(conversation, "answer"),
    )


async def clear_history(uow_factory: UnitOfWorkFactory, conversation: Conversation, now: datetime) -> None:
    async with uow_factory() as uow:
        await uow.conversations.clear_history(conversation.id, now)
        await uow.commit()


async def history(uow_factory: UnitOfWorkFactory, conversation: Conversation) -> list[Message]:
    async with uow_factory() as uow:
        return (await uow.messages.page(conversation.id, limit=50, before=None)).items


async def test_a_live_claim_blocks_others_until_its_holder_finishes(
    uow_factory: UnitOfWorkFactory, reply_slots: ReplySlots
) -> None:
    owner = new_user()
    conversation = new_conversation(owner)
    await store(uow_factory, owner, conversation)
    first, second = uuid.uuid4(), uuid.uuid4()

    assert await start(reply_slots, conversation, first, T0) == "started"
    assert await start(reply_slots, conversation, second, T0 + timedelta(seconds=1)) == "busy"
    await finish(reply_slots, conversation, second, T0 + timedelta(seconds=1))  # not the holder
    assert await start(reply_slots, conversation, second, T0 + timedelta(seconds=2)) == "busy"
    await finish(reply_slots, conversation, first, T0 + timedelta(seconds=2))
    assert await start(reply_slots, conversation, second, T0 + timedelta(seconds=3)) == "started"


async def test_a_refused_start_changes_nothing(
    uow_factory: UnitOfWorkFactory, reply_slots: ReplySlots
) -> None:
    owner = new_user()
    conversation = new_conversation(owner)
    await store(uow_factory, owner, conversation)
    assert await start(reply_slots, conversation, uuid.uuid4(), T0) == "started"

    assert await start(reply_slots, conversation, uuid.uuid4(), T0 + timedelta(minutes=1)) == "busy"

    loaded = await load_conversation(uow_factory, conversation)
    assert loaded is not None
    assert (loaded.message_count, loaded.last_active_at) == (1, T0)


async def test_an_expired_claim_can_be_taken_over(
    uow_factory: UnitOfWorkFactory, reply_slots: ReplySlots
) -> None:
    owner = new_user()
    conversation = new_conversation(owner)
    await store(uow_factory, owner, conversation)
    dead_holder, successor = uuid.uuid4(), uuid.uuid4()
    takeover = T0 + timedelta(minutes=2, seconds=1)

    assert await start(reply_slots, conversation, dead_holder, T0) == "started"
    assert await start(reply_slots, conversation, successor, takeover) == "started"
    # The late holder's finish counts its reply but cannot free the successor's claim.
    await finish(reply_slots, conversation, dead_holder, takeover)
    assert await start(reply_slots, conversation, uuid.uuid4(), T0 + timedelta(minutes=3)) == "busy"


async def test_concurrent_starts_let_exactly_one_win(
    uow_factory: UnitOfWorkFactory, reply_slots: ReplySlots
) -> None:
    owner = new_user()
    conversation = new_conversation(owner)
    await store(uow_factory, owner, conversation)

    results = await asyncio.gather(*(start(reply_slots, conversation, uuid.uuid4(), T0) for _ in range(4)))

    assert sorted(results) == ["busy", "busy", "busy", "started"]


async def test_a_started_reply_takes_effect_at_once_whatever_a_unit_of_work_around_it_does(
    uow_factory: UnitOfWorkFactory, reply_slots: ReplySlots
) -> None:
    """A reply-slot call is atomic by itself: seen by others at once, undone by no rollback."""
    owner = new_user()
    conversation = new_conversation(owner)
    await store(uow_factory, owner, conversation)
    question = new_message(conversation, "kept")

    async with uow_factory() as uow:
        assert await uow.conversations.get(conversation.id, owner_id=owner.id) is not None
        assert await start(reply_slots, conversation, uuid.uuid4(), T0, message=question) == "started"
        assert await history(uow_factory, conversation) == [question]  # another unit of work sees it
        await uow.rollback()
        # leaving without commit

    assert await history(uow_factory, conversation) == [question]
    assert await start(reply_slots, conversation, uuid.uuid4(), T0) == "busy"
    loaded = await load_conversation(uow_factory, conversation)
    assert loaded is not None
    assert loaded.message_count == 1


async def test_starting_an_unknown_or_foreign_conversation_finds_nothing(
    uow_factory: UnitOfWorkFactory,
    reply_slots: ReplySlots,
) -> None:
    owner, stranger = new_user(), new_user()
    conversation = new_conversation(owner)
    await store(uow_factory, owner, stranger, conversation)
    ghost = new_conversation(new_user())

    assert await start(reply_slots, ghost, uuid.uuid4(), T0) == "not_found"
    assert await start(reply_slots, conversation, uuid.uuid4(), T0, owner_id=stranger.id) == "not_found"
    assert await start(reply_slots, conversation, uuid.uuid4(), T0) == "started"  # untouched by the stranger


async def test_a_started_reply_stores_the_user_message(
    uow_factory: UnitOfWorkFactory, reply_slots: ReplySlots
) -> None:
    owner = new_user()
    conversation = new_conversation(owner)
    await store(uow_factory, owner, conversation)
    question = new_message(conversation, "what is 17 * 23?")

    assert await start(reply_slots, conversation, uuid.uuid4(), T0, message=question) == "started"

    assert await history(uow_factory, conversation) == [question]


async def test_a_busy_or_not_found_start_stores_no_message(
    uow_factory: UnitOfWorkFactory, reply_slots: ReplySlots
) -> None:
    owner, stranger = new_user(), new_user()
    conversation = new_conversation(owner)
    await store(uow_factory, owner, stranger, conversation)
    first = new_message(conversation, "first")
    assert await start(reply_slots, conversation, uuid.uuid4(), T0, message=first) == "started"

    busy = await start(reply_slots, conversation, uuid.uuid4(), T0, message=new_message(conversation, "2nd"))
    foreign = await start(
        reply_slots,
        conversation,
        uuid.uuid4(),
        T0,
        owner_id=stranger.id,
        message=new_message(conversation, "x"),
    )

    assert (busy, foreign) == ("busy", "not_found")
    assert await history(uow_factory, conversation) == [first]


async def test_finishing_a_reply_stores_it_counts_it_and_frees_the_slot(
    uow_factory: UnitOfWorkFactory,
    reply_slots: ReplySlots,
) -> None:
    owner = new_user()
    conversation = new_conversation(owner)
    await store(uow_factory, owner, conversation)
    question, answer = new_message(conversation, "question"), new_reply(conversation, "391")
    claim_id, later = uuid.uuid4(), T0 + timedelta(seconds=5)
    assert await start(reply_slots, conversation, claim_id, T0, message=question) == "started"

    await finish(reply_slots, conversation, claim_id, later, reply=answer)

    assert await history(uow_factory, conversation) == [question, answer]
    loaded = await load_conversation(uow_factory, conversation)
    assert loaded is not None
    assert (loaded.message_count, loaded.last_active_at, loaded.updated_at) == (2, later, later)
    assert await start(reply_slots, conversation, uuid.uuid4(), later) == "started"


async def test_finishing_a_reply_of_a_deleted_conversation_reports_it_gone(
    uow_factory: UnitOfWorkFactory,
    reply_slots: ReplySlots,
) -> None:
    owner = new_user()
    conversation = new_conversation(owner)
    await store(uow_factory, owner, conversation)
    claim_id = uuid.uuid4()
    assert await start(reply_slots, conversation, claim_id, T0) == "started"
    async with uow_factory() as uow:
        await uow.conversations.delete(conversation.id)
        await uow.commit()

    assert await finish(reply_slots, conversation, claim_id, T0) == "gone"
    assert await history(uow_factory, conversation) == []


async def test_a_started_reply_answers_the_current_history_version(
    uow_factory: UnitOfWorkFactory, reply_slots: ReplySlots
) -> None:
    owner = new_user()
    conversation = new_conversation(owner)
    await store(uow_factory, owner, conversation)
    await clear_history(uow_factory, conversation, T0)
    await clear_history(uow_factory, conversation, T0)

    started = await reply_slots.start_reply(
        conversation.id,
        owner_id=owner.id,
        claim=ReplyClaim.taken(uuid.uuid4(), now=T0, ttl=timedelta(minutes=2)),
        now=T0,
        user_message=new_message(conversation, "question"),
    )

    assert (started.outcome, started.history_version) == ("started", 2)


async def test_a_reply_to_a_cleared_history_is_discarded_and_keeps_the_slot(
    uow_factory: UnitOfWorkFactory,
    reply_slots: ReplySlots,
) -> None:
    owner = new_user()
    conversation = new_conversation(owner)
    await store(uow_factory, owner, conversation)
    claim_id = uuid.uuid4()
    assert await start(reply_slots, conversation, claim_id, T0) == "started"
    await clear_history(uow_factory, conversation, T0 + timedelta(seconds=1))

    finished = await finish(reply_slots, conversation, claim_id, T0 + timedelta(seconds=2))

    assert finished == "discarded"
    assert await history(uow_factory, conversation) == []
    loaded = await load_conversation(uow_factory, conversation)
    assert loaded is not None
    assert loaded.message_count == 0
    # The slot is still held until the holder has cleaned up and released it.
    assert await start(reply_slots, conversation, uuid.uuid4(), T0 + timedelta(seconds=3)) == "busy"


async def test_releasing_frees_only_the_holders_claim_and_stores_nothing(
    uow_factory: UnitOfWorkFactory,
    reply_slots: ReplySlots,
) -> None:
    owner = new_user()
    conversation = new_conversation(owner)
    await store(uow_factory, owner, conversation)
    holder = uuid.uuid4()
    assert await start(reply_slots, conversation, holder, T0) == "started"

    await reply_slots.release_reply(conversation.id, claim_id=uuid.uuid4())
    assert await start(reply_slots, conversation, uuid.uuid4(), T0) == "busy"
    for _ in range(2):  # idempotent
        await reply_slots.release_reply(conversation.id, claim_id=holder)

    assert [m.content for m in await history(uow_factory, conversation)] == ["question"]
    assert await start(reply_slots, conversation, uuid.uuid4(), T0) == "started"


async def test_a_clear_racing_a_finishing_reply_never_leaves_an_orphan_reply(
    uow_factory: UnitOfWorkFactory,
    reply_slots: ReplySlots,
) -> None:
    """The clear holds the conversation while the reply is being stored: whichever order the
    store serialises them in, the cleared history holds no reply afterwards."""
    owner = new_user()
    conversation = new_conversation(owner)
    await store(uow_factory, owner, conversation)
    claim_id = uuid.uuid4()
    assert await start(reply_slots, conversation, claim_id, T0) == "started"

    async with uow_factory() as clearing:
        await clearing.conversations.clear_history(conversation.id, T0)
        finishing = asyncio.create_task(finish(reply_slots, conversation, claim_id, T0))
        await asyncio.sleep(0.05)  # let the finish reach the store (on PostgreSQL: wait on the row lock)
        await clearing.commit()
    await finishing

    assert await history(uow_factory, conversation) == []


async def test_a_clear_racing_a_starting_turn_never_leaves_half_a_history(
    uow_factory: UnitOfWorkFactory,
    reply_slots: ReplySlots,
) -> None:
    """A user message stored while the history is being cleared is either cleared with it or
    the first message of the new history, which its reply then answers: never a message of the
    old history left in the new one. On PostgreSQL a third transaction holds the conversation
    while the start and then the clear queue up behind it, so the start is stored while the
    clear is under way."""
    owner = new_user()
    conversation = new_conversation(owner)
    await store(uow_factory, owner, conversation)
    await seed_history(
        reply_slots, conversation, [new_message(conversation, "old"), new_reply(conversation, "ok")]
    )
    question = new_message(conversation, "new question")

    async with uow_factory() as holder:
        await holder.conversations.rename(conversation.id, "held", T0)
        starting = asyncio.create_task(start_reply_of(reply_slots, conversation, question))
        await asyncio.sleep(0.05)
        clearing = asyncio.create_task(clear_history(uow_factory, conversation, T0))
        await asyncio.sleep(0.05)
        await holder.commit()
    started, _ = await asyncio.gather(starting, clearing)

    remaining = await history(uow_factory, conversation)
    if remaining:  # stored after the clear: the first message of the new history
        assert remaining == [question]
        assert (started.outcome, started.history_version) == ("started", 1)
    else:  # stored before the clear, and cleared with the old history
        assert started.history_version == 0


async def start_reply_of(reply_slots: ReplySlots, conversation: Conversation, message: Message) -> ReplyStart:
    return await reply_slots.start_reply(
        conversation.id,
        owner_id=conversation.user_id,
        claim=ReplyClaim.taken(uuid.uuid4(), now=T0, ttl=timedelta(minutes=2)),
        now=T0,
        user_message=message,
    )


async def test_a_message_of_another_conversation_is_refused_by_start_and_finish(
    uow_factory: UnitOfWorkFactory,
    reply_slots: ReplySlots,
) -> None:
    owner = new_user()
    conversation, other = new_conversation(owner), new_conversation(owner)
    await store(uow_factory, owner, conversation, other)
    claim_id = uuid.uuid4()

    with pytest.raises(ValueError, match="another conversation"):
        await start(reply_slots, conversation, claim_id, T0, message=new_message(other, "misfiled"))
    assert await start(reply_slots, conversation, claim_id, T0) == "started"
    with pytest.raises(ValueError, match="another conversation"):
        await finish(reply_slots, conversation, claim_id, T0, reply=new_reply(other, "misfiled"))

    assert await history(uow_factory, other) == []


# ---------------------------------------------------------------- paused turns (tool approval)


def new_approval(now: datetime = T0, *, lasts: timedelta = timedelta(hours=1)) -> PendingApproval:
    return PendingApproval(
        id=uuid.uuid4(),
        tool="calculator",
        arguments={"expression": "17 * 23", "nested": {"list": [1, "two", None]}},
        requested_at=now,
        expires_at=now + lasts,
        reply_so_far="Let me compute that. ",
    )


async def paused_conversation(
    uow_factory: UnitOfWorkFactory, reply_slots: ReplySlots, approval: PendingApproval
) -> tuple[Conversation, uuid.UUID]:
    """A conversation whose turn (claim returned) paused for ``approval``."""
    owner = new_user()
    conversation = new_conversation(owner)
    await store(uow_factory, owner, conversation)
    claim_id = uuid.uuid4()
    assert await start(reply_slots, conversation, claim_id, T0) == "started"
    paused = await reply_slots.pause_reply(
        conversation.id, claim_id=claim_id, history_version=0, approval=approval
    )
    assert paused == "stored"
    return conversation, claim_id


async def resume(
    reply_slots: ReplySlots,
    conversation: Conversation,
    approval_id: uuid.UUID,
    now: datetime,
    *,
    owner_id: uuid.UUID | None = None,
    claim_id: uuid.UUID | None = None,
) -> ReplyResume:
    return await reply_slots.resume_reply(
        conversation.id,
        owner_id=owner_id or conversation.user_id,
        approval_id=approval_id,
        claim=ReplyClaim.taken(claim_id or uuid.uuid4(), now=now, ttl=timedelta(minutes=2)),
        now=now,
    )


async def test_a_paused_turn_keeps_the_slot_until_its_approval_expires(
    uow_factory: UnitOfWorkFactory, reply_slots: ReplySlots
) -> None:
    approval = new_approval(lasts=timedelta(hours=1))
    conversation, _ = await paused_conversation(uow_factory, reply_slots, approval)

    # Longer than a running turn's claim (two minutes), shorter than the approval's hour.
    assert (
        await start(reply_slots, conversation, uuid.uuid4(), T0 + timedelta(minutes=30))
        == "awaiting_approval"
    )
    pending = await reply_slots.pending_approval(conversation.id, owner_id=conversation.user_id, now=T0)
    assert pending == approval
    assert await start(reply_slots, conversation, uuid.uuid4(), approval.expires_at) == "started"
    # Taken over: the expired approval is gone for good.
    assert (await resume(reply_slots, conversation, approval.id, approval.expires_at)).outcome in {
        "busy",
        "no_approval",
    }
    assert await reply_slots.pending_approval(conversation.id, owner_id=conversation.user_id, now=T0) is None


async def test_resuming_returns_the_approval_and_holds_the_slot_with_the_new_claim(
    uow_factory: UnitOfWorkFactory, reply_slots: ReplySlots
) -> None:
    approval = new_approval()
    conversation, _ = await paused_conversation(uow_factory, reply_slots, approval)
    resumed_claim, later = uuid.uuid4(), T0 + timedelta(minutes=5)

    resumed = await resume(reply_slots, conversation, approval.id, later, claim_id=resumed_claim)

    assert (resumed.outcome, resumed.history_version, resumed.approval) == ("resumed", 0, approval)
    assert (
        await reply_slots.pending_approval(conversation.id, owner_id=conversation.user_id, now=later) is None
    )
    assert await start(reply_slots, conversation, uuid.uuid4(), later) == "busy"  # running again
    assert (await resume(reply_slots, conversation, approval.id, later)).outcome == "busy"
    assert await finish(reply_slots, conversation, resumed_claim, later) == "stored"
    assert await start(reply_slots, conversation, uuid.uuid4(), later) == "started"


async def test_resuming_is_refused_for_a_stranger_a_wrong_id_or_an_expired_approval(
    uow_factory: UnitOfWorkFactory, reply_slots: ReplySlots
) -> None:
    approval = new_approval(lasts=timedelta(minutes=10))
    conversation, _ = await paused_conversation(uow_factory, reply_slots, approval)
    stranger = new_user()
    await store(uow_factory, stranger)

    assert (
        await resume(reply_slots, conversation, approval.id, T0, owner_id=stranger.id)
    ).outcome == "not_found"
    assert (await resume(reply_slots, new_conversation(stranger), approval.id, T0)).outcome == "not_found"
    assert (await resume(reply_slots, conversation, uuid.uuid4(), T0)).outcome == "no_approval"
    assert (await resume(reply_slots, conversation, approval.id, approval.expires_at)).outcome == "expired"
    assert await reply_slots.pending_approval(conversation.id, owner_id=stranger.id, now=T0) is None
    assert (
        await reply_slots.pending_approval(conversation.id, owner_id=conversation.user_id, now=T0) == approval
    )


async def test_concurrent_decisions_resume_exactly_once(
    uow_factory: UnitOfWorkFactory, reply_slots: ReplySlots
) -> None:
    approval = new_approval()
    conversation, _ = await paused_conversation(uow_factory, reply_slots, approval)

    results = await asyncio.gather(*(resume(reply_slots, conversation, approval.id, T0) for _ in range(4)))

    assert sorted(r.outcome for r in results) == ["busy", "busy", "busy", "resumed"]


async def test_clearing_a_paused_conversation_drops_the_approval_and_frees_the_slot(
    uow_factory: UnitOfWorkFactory, reply_slots: ReplySlots
) -> None:
    approval = new_approval()
    conversation, _ = await paused_conversation(uow_factory, reply_slots, approval)

    await clear_history(uow_factory, conversation, T0 + timedelta(seconds=1))

    assert await reply_slots.pending_approval(conversation.id, owner_id=conversation.user_id, now=T0) is None
    assert await start(reply_slots, conversation, uuid.uuid4(), T0 + timedelta(seconds=2)) == "started"


async def test_pausing_needs_the_history_version_and_the_claim(
    uow_factory: UnitOfWorkFactory, reply_slots: ReplySlots
) -> None:
    owner = new_user()
    conversation, deleted = new_conversation(owner), new_conversation(owner)
    await store(uow_factory, owner, conversation, deleted)
    claim_id = uuid.uuid4()
    assert await start(reply_slots, conversation, claim_id, T0) == "started"
    approval = new_approval()

    assert (
        await reply_slots.pause_reply(
            conversation.id, claim_id=claim_id, history_version=1, approval=approval
        )
        == "discarded"
    )
    async with uow_factory() as uow:
        await uow.conversations.delete(deleted.id)
        await uow.commit()
    assert (
        await reply_slots.pause_reply(deleted.id, claim_id=claim_id, history_version=0, approval=approval)
        == "gone"
    )
    # Not the holder: nothing pauses (the slot is still the running turn's).
    assert (
        await reply_slots.pause_reply(
            conversation.id, claim_id=uuid.uuid4(), history_version=0, approval=approval
        )
        == "stored"
    )
    assert await reply_slots.pending_approval(conversation.id, owner_id=owner.id, now=T0) is None
    assert await start(reply_slots, conversation, uuid.uuid4(), T0) == "busy"


# ---------------------------------------------------------------- messages


async def stored_conversation(
    uow_factory: UnitOfWorkFactory, reply_slots: ReplySlots, texts: list[str]
) -> list[Message]:
    """A conversation whose history is ``texts``: questions and answers in turn."""
    owner = new_user()
    conversation = new_conversation(owner)
    roles = [MessageRole.USER, MessageRole.ASSISTANT]
    messages = [new_message(conversation, text, role=roles[i % 2]) for i, text in enumerate(texts)]
    await store(uow_factory, owner, conversation)
    await seed_history(reply_slots, conversation, messages)
    return messages


async def test_message_pages_walk_back_in_insertion_order(
    uow_factory: UnitOfWorkFactory, reply_slots: ReplySlots
) -> None:
    messages = await stored_conversation(uow_factory, reply_slots, ["m1", "m2", "m3", "m4", "m5"])
    conversation_id = messages[0].conversation_id

    async with uow_factory() as uow:
        latest = await uow.messages.page(conversation_id, limit=2, before=None)
        middle = await uow.messages.page(conversation_id, limit=2, before=latest.items[0].id)
        first = await uow.messages.page(conversation_id, limit=2, before=middle.items[0].id)

    assert ([m.content for m in latest.items], latest.has_older) == (["m4", "m5"], True)
    assert ([m.content for m in middle.items], middle.has_older) == (["m2", "m3"], True)
    assert ([m.content for m in first.items], first.has_older) == (["m1"], False)


async def test_a_page_holding_everything_has_nothing_older(
    uow_factory: UnitOfWorkFactory, reply_slots: ReplySlots
) -> None:
    messages = await stored_conversation(uow_factory, reply_slots, ["a", "b"])

    async with uow_factory() as uow:
        page = await uow.messages.page(messages[0].conversation_id, limit=2, before=None)

    assert page.items == messages
    assert page.has_older is False


async def test_an_unknown_or_foreign_before_gives_an_empty_page(
    uow_factory: UnitOfWorkFactory, reply_slots: ReplySlots
) -> None:
    mine = await stored_conversation(uow_factory, reply_slots, ["a", "b"])
    theirs = await stored_conversation(uow_factory, reply_slots, ["x"])

    async with uow_factory() as uow:
        unknown = await uow.messages.page(mine[0].conversation_id, limit=5, before=uuid.uuid4())
        foreign = await uow.messages.page(mine[0].conversation_id, limit=5, before=theirs[0].id)

    assert (unknown.items, unknown.has_older) == ([], False)
    assert (foreign.items, foreign.has_older) == ([], False)


# ---------------------------------------------------------------- storage down


@pytest.fixture(params=["in_memory", "postgres"])
def unreachable(request: pytest.FixtureRequest) -> Iterator[Store]:
    if request.param == "in_memory":
        database = InMemoryDatabase()
        database.fail_with_unavailable = True
        yield Store(database.unit_of_work, database.reply_slots)
        return
    # Port 1 on loopback: nothing listens, the connection is refused at once.
    engine = create_engine(
        "postgresql://postgres@127.0.0.1:1/postgres", pool_size=1, max_overflow=0, pool_timeout=1
    )
    yield Store(postgres_unit_of_work_factory(engine), PostgresReplySlots(engine))
    engine.sync_engine.dispose()


async def test_an_unreachable_database_raises_storage_unavailable(unreachable: Store) -> None:
    async def read_something() -> None:
        async with asyncio.timeout(10), unreachable.uow() as uow:
            await uow.users.get(uuid.uuid4())

    with pytest.raises(StorageUnavailable):
        await read_something()


async def test_an_unreachable_database_fails_reply_slot_calls_with_storage_unavailable(
    unreachable: Store,
) -> None:
    conversation = new_conversation(new_user())

    with pytest.raises(StorageUnavailable):
        async with asyncio.timeout(10):
            await start(unreachable.slots, conversation, uuid.uuid4(), T0)
    with pytest.raises(StorageUnavailable):
        async with asyncio.timeout(10):
            await finish(unreachable.slots, conversation, uuid.uuid4(), T0)
    with pytest.raises(StorageUnavailable):
        async with asyncio.timeout(10):
            await unreachable.slots.release_reply(conversation.id, claim_id=uuid.uuid4())
