"""The PostgreSQL adapter's behaviour under concurrency, failures and restarts.

The functional contract (shared with the fake) lives in tests/contract; this module
covers what only a real server can show: row locks, dropped connections, timeouts.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, insert, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine
from tests.integration.probes import ping

from parley.adapters.outbound.postgres.engine import create_engine, to_async_url
from parley.adapters.outbound.postgres.probe import PostgresDatabaseProbe
from parley.adapters.outbound.postgres.tables import messages
from parley.adapters.outbound.postgres.unit_of_work import postgres_unit_of_work_factory
from parley.domain.auth import AuthSession
from parley.domain.chat import Conversation, Message, MessageRole, MessageStatus, ReplyClaim
from parley.domain.errors import EmailAlreadyRegistered
from parley.domain.users import Email, User
from parley.ports.persistence import ReplySlots, StorageUnavailable, UnitOfWorkFactory

pytestmark = pytest.mark.integration

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
CLOSED_PORT_URL = "postgresql://postgres@127.0.0.1:1/postgres"
LOCK_WAIT = 0.3  # long enough for a blocked statement to have run if it were not blocked


def new_user(email: str | None = None) -> User:
    address = Email.parse(email or f"u-{uuid.uuid4().hex[:10]}@example.com")
    return User(id=uuid.uuid4(), email=address, password_hash="h", created_at=T0, updated_at=T0)


async def stored_conversation(uow_factory: UnitOfWorkFactory) -> Conversation:
    user = new_user()
    conversation = Conversation(
        id=uuid.uuid4(), user_id=user.id, name="c", created_at=T0, updated_at=T0, last_active_at=T0
    )
    async with uow_factory() as uow:
        await uow.users.add(user)
        await uow.conversations.add(conversation)
        await uow.commit()
    return conversation


def new_message(conversation: Conversation, role: MessageRole = MessageRole.USER) -> Message:
    return Message(
        id=uuid.uuid4(),
        conversation_id=conversation.id,
        role=role,
        content="text",
        status=MessageStatus.COMPLETE,
        created_at=T0,
    )


async def start_reply(reply_slots: ReplySlots, conversation: Conversation, claim_id: uuid.UUID) -> str:
    """``start_reply``'s outcome."""
    started = await reply_slots.start_reply(
        conversation.id,
        owner_id=conversation.user_id,
        claim=ReplyClaim(claim_id, expires_at=T0 + timedelta(minutes=1)),
        now=T0,
        user_message=new_message(conversation),
    )
    return started.outcome


@contextmanager
def sent_statements(engine: AsyncEngine) -> Iterator[list[tuple[str, bool]]]:
    """Each statement SQLAlchemy sends meanwhile, with whether its connection was in autocommit.

    psycopg sends a BEGIN before a statement only outside autocommit, so ``True`` means that
    statement cost no BEGIN (nor, later, a COMMIT) round trip.
    """
    sent: list[tuple[str, bool]] = []

    def record(connection: Any, cursor: Any, statement: str, *_: Any) -> None:
        sent.append((statement, connection.connection.dbapi_connection.autocommit))

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


@pytest.fixture
async def black_hole() -> AsyncIterator[str]:
    """A URL whose server accepts TCP connections and then never says a word."""
    held: list[asyncio.StreamWriter] = []

    async def hold(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    for writer in held:
        writer.close()
    server.close()
    await server.wait_closed()


# ---------------------------------------------------------------- round trips


def kinds(sent: list[tuple[str, bool]]) -> list[str]:
    """The statements' first words (SAVEPOINT commands with their first two): what was sent."""
    return [
        " ".join(statement.split()[: 2 if statement.startswith(("ROLLBACK TO", "RELEASE")) else 1])
        for statement, _ in sent
    ]


async def test_a_turns_two_writes_are_one_autocommit_statement_each(
    engine: AsyncEngine, uow_factory: UnitOfWorkFactory, reply_slots: ReplySlots
) -> None:
    conversation = await stored_conversation(uow_factory)
    claim_id = uuid.uuid4()
    reply = new_message(conversation, MessageRole.ASSISTANT)

    with sent_statements(engine) as sent:
        assert await start_reply(reply_slots, conversation, claim_id) == "started"
        finished = await reply_slots.finish_reply(
            conversation.id, claim_id=claim_id, history_version=0, now=T0, reply=reply
        )
    assert finished == "stored"

    assert [(statement.split()[0], autocommit) for statement, autocommit in sent] == [
        ("WITH", True),
        ("WITH", True),
    ]


async def test_a_unit_of_work_that_only_reads_sends_no_begin_nor_rollback(
    engine: AsyncEngine, uow_factory: UnitOfWorkFactory
) -> None:
    conversation = await stored_conversation(uow_factory)

    with sent_statements(engine) as sent:
        async with uow_factory() as uow:
            assert await uow.conversations.get(conversation.id, owner_id=conversation.user_id) is not None
            assert (await uow.messages.page(conversation.id, limit=5, before=None)).items == []
            await uow.commit()
        async with uow_factory() as uow:  # left without commit
            assert await uow.users.get(conversation.user_id) is not None

    # Autocommit: psycopg sent no BEGIN of its own either.
    assert [(kind, autocommit) for kind, (_, autocommit) in zip(kinds(sent), sent, strict=True)] == [
        ("SELECT", True),
        ("SELECT", True),
        ("SELECT", True),
    ]


async def test_the_transaction_begins_at_the_first_write_and_is_rolled_back_without_commit(
    engine: AsyncEngine, uow_factory: UnitOfWorkFactory
) -> None:
    conversation = await stored_conversation(uow_factory)

    with sent_statements(engine) as sent:
        async with uow_factory() as uow:
            assert await uow.conversations.get(conversation.id, owner_id=conversation.user_id) is not None
            await uow.conversations.rename(conversation.id, "never kept", T0)
            assert await uow.conversations.get(conversation.id, owner_id=conversation.user_id) is not None
            # leaving without commit

    assert kinds(sent) == ["SELECT", "BEGIN", "UPDATE", "SELECT", "ROLLBACK"]
    async with uow_factory() as uow:
        loaded = await uow.conversations.get(conversation.id, owner_id=conversation.user_id)
    assert loaded is not None
    assert loaded.name == "c"


async def test_a_locking_read_begins_the_transaction_and_commit_ends_it(
    engine: AsyncEngine, uow_factory: UnitOfWorkFactory
) -> None:
    user = new_user()
    auth_session = AuthSession(
        id=uuid.uuid4(), user_id=user.id, refresh_token_id=uuid.uuid4(), created_at=T0, expires_at=T0
    )
    async with uow_factory() as uow:
        await uow.users.add(user)
        await uow.auth_sessions.add(auth_session)
        await uow.commit()

    with sent_statements(engine) as sent:
        async with uow_factory() as uow:
            assert await uow.auth_sessions.get(auth_session.id, for_update=True) is not None
            await uow.commit()
            assert await uow.users.get(user.id) is not None  # after the commit: no new BEGIN

    assert kinds(sent) == ["BEGIN", "SELECT", "COMMIT", "SELECT"]


async def test_a_refused_guarded_write_in_a_lazily_begun_transaction_keeps_it_usable(
    engine: AsyncEngine, uow_factory: UnitOfWorkFactory
) -> None:
    taken, kept = new_user(), new_user()
    async with uow_factory() as uow:
        await uow.users.add(taken)
        await uow.commit()

    with sent_statements(engine) as sent:
        async with uow_factory() as uow:
            assert await uow.users.get(kept.id) is None
            with pytest.raises(EmailAlreadyRegistered):
                await uow.users.add(new_user(taken.email.value))
            await uow.users.add(kept)
            await uow.commit()

    assert kinds(sent) == [
        "SELECT",
        "BEGIN",
        "SAVEPOINT",
        "INSERT",
        "ROLLBACK TO",
        "SAVEPOINT",
        "INSERT",
        "RELEASE SAVEPOINT",
        "COMMIT",
    ]
    async with uow_factory() as uow:
        assert await uow.users.get(kept.id) == kept


# ---------------------------------------------------------------- concurrency


async def test_concurrent_starts_let_exactly_one_reply_win(
    uow_factory: UnitOfWorkFactory, reply_slots: ReplySlots
) -> None:
    conversation = await stored_conversation(uow_factory)

    results = await asyncio.gather(*(start_reply(reply_slots, conversation, uuid.uuid4()) for _ in range(4)))

    assert sorted(results) == ["busy", "busy", "busy", "started"]
    async with uow_factory() as uow:
        loaded = await uow.conversations.get(conversation.id, owner_id=conversation.user_id)
    assert loaded is not None
    assert loaded.message_count == 1  # only the winner counted its message


@pytest.mark.parametrize("clear_ends_with", ["commit", "rollback"])
async def test_a_start_waits_for_a_clear_under_way_and_answers_the_history_it_leaves(
    uow_factory: UnitOfWorkFactory, reply_slots: ReplySlots, clear_ends_with: str
) -> None:
    conversation = await stored_conversation(uow_factory)

    async def start() -> int:
        started = await reply_slots.start_reply(
            conversation.id,
            owner_id=conversation.user_id,
            claim=ReplyClaim(uuid.uuid4(), expires_at=T0 + timedelta(minutes=1)),
            now=T0,
            user_message=new_message(conversation),
        )
        assert started.outcome == "started"
        return started.history_version

    async with uow_factory() as clearing:
        await clearing.conversations.clear_history(conversation.id, T0)
        rival = asyncio.create_task(start())
        await asyncio.sleep(LOCK_WAIT)
        assert not rival.done()  # blocked on the clear's row lock
        await (clearing.commit() if clear_ends_with == "commit" else clearing.rollback())

    assert await rival == (1 if clear_ends_with == "commit" else 0)


async def test_get_for_update_serialises_refresh_rotation(uow_factory: UnitOfWorkFactory) -> None:
    user = new_user()
    first_token = uuid.uuid4()
    auth_session = AuthSession(
        id=uuid.uuid4(),
        user_id=user.id,
        refresh_token_id=first_token,
        created_at=T0,
        expires_at=T0 + timedelta(days=1),
    )
    async with uow_factory() as uow:
        await uow.users.add(user)
        await uow.auth_sessions.add(auth_session)
        await uow.commit()

    async def rotate(presented: uuid.UUID) -> bool:
        async with uow_factory() as uow:
            loaded = await uow.auth_sessions.get(auth_session.id, for_update=True)
            assert loaded is not None
            rotated = loaded.rotate(presented, uuid.uuid4(), T0)
            await asyncio.sleep(0.05)  # widen the race window
            await uow.auth_sessions.update(loaded)
            await uow.commit()
            return rotated

    # Both present the same (current) refresh token: one rotation, one detected reuse.
    results = await asyncio.gather(rotate(first_token), rotate(first_token))

    assert sorted(results) == [False, True]
    async with uow_factory() as uow:
        final = await uow.auth_sessions.get(auth_session.id)
    assert final is not None
    assert final.revoked_at == T0  # reuse revoked the whole family


async def test_a_concurrent_registration_of_the_same_email_fails_on_the_loser(
    uow_factory: UnitOfWorkFactory,
) -> None:
    address = f"race-{uuid.uuid4().hex[:8]}@example.com"

    async def register() -> str:
        try:
            async with uow_factory() as uow:
                await uow.users.add(new_user(address))
                await asyncio.sleep(0.05)
                await uow.commit()
        except EmailAlreadyRegistered:
            return "taken"
        return "registered"

    outcomes = await asyncio.gather(register(), register())

    assert sorted(outcomes) == ["registered", "taken"]


# ---------------------------------------------------------------- failures


async def test_a_closed_port_raises_storage_unavailable_promptly() -> None:
    engine = create_engine(CLOSED_PORT_URL, pool_size=1, max_overflow=0, pool_timeout=1)
    uow_factory = postgres_unit_of_work_factory(engine)
    started = time.monotonic()
    try:
        with pytest.raises(StorageUnavailable):
            await enter(uow_factory)
    finally:
        await engine.dispose()

    assert time.monotonic() - started < 3


async def enter(uow_factory: UnitOfWorkFactory) -> None:
    async with uow_factory():
        pass


async def test_a_silent_server_is_given_up_on_after_the_connect_timeout(black_hole: str) -> None:
    engine = create_engine(black_hole, pool_size=1, max_overflow=0, pool_timeout=1, connect_timeout=2)
    uow_factory = postgres_unit_of_work_factory(engine)
    started = time.monotonic()
    try:
        with pytest.raises(StorageUnavailable):
            await enter(uow_factory)
    finally:
        await engine.dispose()

    assert time.monotonic() - started < 6


async def test_an_exhausted_pool_raises_storage_unavailable(migrated_database_url: str) -> None:
    engine = create_engine(migrated_database_url, pool_size=1, max_overflow=0, pool_timeout=0.2)
    uow_factory = postgres_unit_of_work_factory(engine)
    try:
        async with uow_factory():
            with pytest.raises(StorageUnavailable):
                await enter(uow_factory)
    finally:
        await engine.dispose()


async def test_the_pool_recovers_after_its_connections_are_killed(
    engine: AsyncEngine, uow_factory: UnitOfWorkFactory
) -> None:
    await stored_conversation(uow_factory)  # leaves a pooled connection behind
    async with engine.connect() as admin:
        await admin.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )

    conversation = await stored_conversation(uow_factory)  # pre-ping replaces the dead connection

    async with uow_factory() as uow:
        assert await uow.conversations.get(conversation.id, owner_id=conversation.user_id) is not None


async def test_the_schema_refuses_an_unknown_message_role(
    uow_factory: UnitOfWorkFactory, engine: AsyncEngine
) -> None:
    conversation = await stored_conversation(uow_factory)
    row = {
        "id": uuid.uuid4(),
        "conversation_id": conversation.id,
        "role": "system",
        "content": "x",
        "status": "complete",
        "created_at": T0,
    }

    with pytest.raises(IntegrityError, match="ck_messages_role_known"):
        async with engine.begin() as connection:
            await connection.execute(insert(messages).values(row))


# ---------------------------------------------------------------- probe and URLs


async def test_the_probe_answers_for_a_live_database(engine: AsyncEngine) -> None:
    await ping(engine)


async def test_the_probe_answers_while_every_pooled_connection_is_in_use(migrated_database_url: str) -> None:
    engine = create_engine(migrated_database_url, pool_size=1, max_overflow=0, pool_timeout=0.2)
    try:
        async with engine.connect():  # the pool's only connection is busy
            await ping(engine, timeout=2)
    finally:
        await engine.dispose()


async def test_the_first_probe_after_a_restart_reports_the_database_up(
    engine: AsyncEngine, migrated_database_url: str
) -> None:
    probe = PostgresDatabaseProbe(engine)
    try:
        await probe.ping()  # its connection is open now
        async with engine.connect() as admin:  # as a restart does: every other connection dies
            await admin.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )

        await probe.ping()
    finally:
        await probe.aclose()


async def test_the_probe_reports_a_silent_server_within_its_timeout(black_hole: str) -> None:
    engine = create_engine(black_hole, pool_size=1, max_overflow=0, pool_timeout=1, connect_timeout=10)
    started = time.monotonic()
    try:
        with pytest.raises(StorageUnavailable):
            await ping(engine, timeout=0.5)
    finally:
        await engine.dispose()

    assert time.monotonic() - started < 2


async def test_the_probe_reports_a_closed_port() -> None:
    engine = create_engine(CLOSED_PORT_URL, pool_size=1, max_overflow=0, pool_timeout=1)
    try:
        with pytest.raises(StorageUnavailable):
            await ping(engine)
    finally:
        await engine.dispose()


@pytest.mark.parametrize("scheme", ["postgres", "postgresql", "postgresql+psycopg"])
async def test_every_accepted_url_scheme_reaches_the_database(
    migrated_database_url: str, scheme: str
) -> None:
    url = scheme + migrated_database_url.removeprefix("postgresql")
    engine = create_engine(url, pool_size=1, max_overflow=0, pool_timeout=1)
    try:
        await ping(engine)
    finally:
        await engine.dispose()


@pytest.mark.parametrize(
    "url", ["sqlite:///parley.db", "postgresql+asyncpg://u@localhost/db", "mysql://u@h/d"]
)
def test_other_database_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError, match="unsupported database URL"):
        to_async_url(url)
