"""The in-memory fake holds use cases to their unit-of-work promises (PostgreSQL would not notice)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from parley.domain.chat import Conversation
from parley.domain.users import Email, User
from tests.fakes.persistence import InMemoryDatabase

pytestmark = pytest.mark.unit

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def new_user() -> User:
    email = Email.parse(f"u-{uuid.uuid4().hex[:8]}@example.com")
    return User(id=uuid.uuid4(), email=email, password_hash="h", created_at=T0, updated_at=T0)


def new_conversation(user: User) -> Conversation:
    return Conversation(
        id=uuid.uuid4(), user_id=user.id, name="c", created_at=T0, updated_at=T0, last_active_at=T0
    )


async def test_a_second_write_in_a_single_write_unit_of_work_is_refused_and_the_first_kept() -> None:
    db = InMemoryDatabase()
    user = new_user()

    async with db.unit_of_work(single_write=True) as uow:
        await uow.users.add(user)
        with pytest.raises(RuntimeError, match="second write in a single-write unit of work"):
            await uow.conversations.add(new_conversation(user))

    assert list(db.users) == [user.id]
    assert db.conversations == {}


async def test_the_single_write_promise_spans_the_whole_unit_of_work_not_one_transaction() -> None:
    db = InMemoryDatabase()
    user = new_user()

    async with db.unit_of_work(single_write=True) as uow:
        await uow.users.add(user)
        await uow.commit()
        with pytest.raises(RuntimeError, match="second write"):
            await uow.conversations.add(new_conversation(user))


async def test_reads_around_the_one_write_are_allowed_and_see_it() -> None:
    db = InMemoryDatabase()
    user = new_user()

    async with db.unit_of_work(single_write=True) as uow:
        assert await uow.users.get(user.id) is None
        await uow.users.add(user)
        assert await uow.users.get(user.id) == user
        await uow.commit()


async def test_a_read_only_unit_of_work_still_refuses_any_write() -> None:
    db = InMemoryDatabase()

    async with db.unit_of_work(read_only=True) as uow:
        with pytest.raises(RuntimeError, match="write in a read-only unit of work"):
            await uow.users.add(new_user())

    assert db.users == {}
