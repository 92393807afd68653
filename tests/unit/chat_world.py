"""The chat use cases' world for unit tests: in-memory persistence, a scripted agent, two users.

Shared by the chat unit tests (``chat_world()`` gives a world with ALICE and BOB registered).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from parley.application.chat.conversations import CreateConversation
from parley.application.chat.history import ListMessages
from parley.application.chat.running import DeferredWrites, RunningTurns
from parley.application.chat.sending import TakeTurn
from parley.application.chat.titles import ChatTitles
from parley.application.chat.turns import TurnPolicy, TurnServices
from parley.application.memory import UserMemory
from parley.application.principal import Principal
from parley.domain.users import Email, User
from tests.fakes.agent import ScriptedChatAgent
from tests.fakes.persistence import InMemoryDatabase
from tests.fakes.system import FakeClock, SequentialIdGenerator
from tests.fakes.tracing import RecordingTracer

ALICE = Principal(user_id=UUID(int=1001), session_id=UUID(int=2001))
BOB = Principal(user_id=UUID(int=1002), session_id=UUID(int=2002))


def _quick_retries() -> DeferredWrites:
    return DeferredWrites(first_delay=0.01, max_delay=0.02)


@dataclass
class Chat:
    db: InMemoryDatabase = field(default_factory=InMemoryDatabase)
    agent: ScriptedChatAgent = field(default_factory=ScriptedChatAgent)
    tracer: RecordingTracer = field(default_factory=RecordingTracer)
    clock: FakeClock = field(default_factory=FakeClock)
    ids: SequentialIdGenerator = field(default_factory=SequentialIdGenerator)
    running: RunningTurns = field(default_factory=RunningTurns)
    deferred: DeferredWrites = field(default_factory=_quick_retries)
    titles: ChatTitles | None = None  # auto-naming off unless a test sets it
    memory: UserMemory | None = None  # long-term memory off unless a test sets it

    def services(self, **policy: Any) -> TurnServices:
        return TurnServices(
            self.db.reply_slots,
            self.agent,
            self.tracer,
            self.clock,
            self.ids,
            TurnPolicy(**policy),
            running=self.running,
            deferred=self.deferred,
            titles=self.titles,
            memory=self.memory,
        )

    def take_turn(self, **policy: Any) -> TakeTurn:
        return TakeTurn(self.services(**policy))

    async def conversation(self, principal: Principal = ALICE, name: str | None = None) -> UUID:
        created = await CreateConversation(self.db.unit_of_work, self.clock, self.ids).execute(
            principal, name
        )
        return created.id

    async def messages(
        self, conversation_id: UUID, principal: Principal = ALICE
    ) -> list[tuple[str, str, str]]:
        page = await ListMessages(self.db.unit_of_work).execute(principal, conversation_id, limit=200)
        return [(m.role.value, m.content, m.status.value) for m in page.items]


async def chat_world() -> Chat:
    """A fresh world where ALICE and BOB have accounts."""
    world = Chat()
    async with world.db.unit_of_work() as uow:
        for principal in (ALICE, BOB):
            now = world.clock.now()
            email = Email(f"{principal.user_id.int}@example.com")
            user = User(id=principal.user_id, email=email, password_hash="x", created_at=now, updated_at=now)
            await uow.users.add(user)
        await uow.commit()
    return world
