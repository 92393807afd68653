"""A scripted double of the :class:`~parley.ports.agent.ChatAgent` port.

Each call to :meth:`ScriptedChatAgent.run` consumes the next :class:`ScriptedTurn`
(first in, first out). When the script is empty the agent falls back to a
deterministic echo that also proves it remembers earlier turns, so the same double
serves both use-case unit tests (scripted replies, failures, slow streams) and the
``ChatAgent`` contract suite (memory, ``forget``).

Everything the agent saw is recorded: the turns (``turns``), each run's fate
(``streams``: completed, failed, or cancelled early) and the ``forget`` calls.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from uuid import UUID

from parley.ports.agent import AgentEvent, AgentResume, AgentTurn, EventSink, TokenDelta, Usage
from parley.ports.persistence import StorageUnavailable

SCRIPTED_MODEL = "scripted-model"


@dataclass(frozen=True, slots=True)
class ScriptedTurn:
    """What one ``run`` call does, in order.

    - emits ``events``, sleeping ``delay`` seconds before each one;
    - then raises ``error`` if set (e.g. ``AgentUnavailable("down")``);
    - else waits forever if ``hang`` (for timeout and cancellation tests);
    - else ends normally.
    """

    events: Sequence[AgentEvent] = ()
    error: BaseException | None = None
    delay: float = 0.0
    hang: bool = False

    @classmethod
    def reply(cls, text: str, *, chunk: int = 0, delay: float = 0.0) -> ScriptedTurn:
        """A plain reply streamed as token deltas (whole when ``chunk`` is 0), then a usage event."""
        pieces = [text[i : i + chunk] for i in range(0, len(text), chunk)] if chunk > 0 else [text]
        events: list[AgentEvent] = [TokenDelta(piece) for piece in pieces if piece]
        events.append(Usage(SCRIPTED_MODEL, prompt_tokens=len(pieces), completion_tokens=len(pieces)))
        return cls(events=events, delay=delay)

    @classmethod
    def failing(cls, error: BaseException, *, events: Sequence[AgentEvent] = ()) -> ScriptedTurn:
        """Emit ``events`` (possibly none) and then raise ``error``."""
        return cls(events=events, error=error)


@dataclass(slots=True)
class StreamRecord:
    """The fate of one ``run`` call.

    ``closed_early`` is True when the run was cancelled before the script finished;
    ``failed`` when the scripted error was raised; ``completed`` when every event was
    delivered and the run ended.
    """

    turn: AgentTurn
    yielded: list[AgentEvent] = field(default_factory=list)
    completed: bool = False
    failed: bool = False
    closed_early: bool = False


class ScriptedChatAgent:
    """An in-memory :class:`~parley.ports.agent.ChatAgent` driven by a script.

    Construct with the turns to play, or push more with :meth:`script`. Memory:
    every turn's user message is remembered per conversation (even a failed or
    cancelled one) when the run ends, as the LangGraph agent checkpoints on exit,
    until :meth:`forget`. Set ``memory_unavailable`` to make ``run`` and ``forget``
    raise :class:`StorageUnavailable` (the memory store is down).
    """

    def __init__(self, turns: Iterable[ScriptedTurn] = ()) -> None:
        self._script: deque[ScriptedTurn] = deque(turns)
        self._memory: defaultdict[UUID, list[str]] = defaultdict(list)
        self.streams: list[StreamRecord] = []
        self.forgotten: list[UUID] = []
        self.resumes: list[AgentResume] = []
        self.memory_unavailable = False

    def script(self, *turns: ScriptedTurn) -> None:
        """Append turns to play after the ones already scripted."""
        self._script.extend(turns)

    @property
    def turns(self) -> list[AgentTurn]:
        """Every turn ``run`` was called with, in order."""
        return [record.turn for record in self.streams]

    @property
    def closed_early(self) -> bool:
        """True when the most recent run was cancelled before it finished."""
        return bool(self.streams) and self.streams[-1].closed_early

    def remembered(self, conversation_id: UUID) -> list[str]:
        """The user messages this agent remembers for a conversation, oldest first."""
        return list(self._memory.get(conversation_id, []))

    async def run(self, turn: AgentTurn, emit: EventSink) -> None:
        record = StreamRecord(turn=turn)
        self.streams.append(record)
        self._check_memory()
        scripted = self._script.popleft() if self._script else self._echo(turn)
        try:
            await self._play(scripted, record, emit)
        finally:
            self._memory[turn.conversation_id].append(turn.content)

    async def resume(self, resume: AgentResume, emit: EventSink) -> None:
        """Plays the next scripted turn (else a reply naming the decision); recorded in ``resumes``
        and, as a turn whose content names the decision, in ``streams``."""
        decision = type(resume.decision).__name__
        turn = AgentTurn(resume.conversation_id, resume.user_id, f"<{decision}>", resume.stream_tokens)
        record = StreamRecord(turn=turn)
        self.streams.append(record)
        self.resumes.append(resume)
        self._check_memory()
        scripted = self._script.popleft() if self._script else ScriptedTurn.reply(f"[scripted] {decision}")
        await self._play(scripted, record, emit)

    async def forget(self, conversation_id: UUID) -> None:
        self._check_memory()
        self.forgotten.append(conversation_id)
        self._memory.pop(conversation_id, None)

    def _check_memory(self) -> None:
        if self.memory_unavailable:
            raise StorageUnavailable("the scripted agent's memory is unavailable")

    def _echo(self, turn: AgentTurn) -> ScriptedTurn:
        """The unscripted reply: quotes the message and counts the earlier user turns."""
        earlier = len(self._memory.get(turn.conversation_id, []))
        text = f'[scripted] I remember {earlier} earlier user message(s). You said: "{turn.content}"'
        return ScriptedTurn.reply(text, chunk=8)

    async def _play(self, scripted: ScriptedTurn, record: StreamRecord, emit: EventSink) -> None:
        try:
            for event in scripted.events:
                await asyncio.sleep(scripted.delay)  # 0 still lets the caller run, as a real stream does
                record.yielded.append(event)
                emit(event)
            if scripted.error is not None:
                record.failed = True
                raise scripted.error
            if scripted.hang:
                await asyncio.Event().wait()
            record.completed = True
        except asyncio.CancelledError:
            record.closed_early = True
            raise
