"""Scores in the tracing backend (``parley eval`` with Langfuse): sending a judge's score to a
turn's trace, and reading back recent production turns to judge them.

Contract of both ports: every network call is bounded in time; a failure is raised as the
port's own error (:class:`ScoreNotSent`, :class:`TracesUnavailable`), never the driver's.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol


class ScoreNotSent(Exception):
    """The backend did not accept a score (refused, failed or did not answer in time)."""


class TracesUnavailable(Exception):
    """Recent traces could not be read (the message says why)."""


@dataclass(frozen=True, slots=True)
class Score:
    """A metric's score in [0, 1] on one trace, with the judge's reason as its comment."""

    trace_id: str
    name: str
    value: float
    comment: str = ""


class ScoreSink(Protocol):
    """Where scores go.

    - ``send`` stores one score on its trace, or raises :class:`ScoreNotSent`;
    - sending the same (trace, name) again replaces the earlier score rather than adding one;
    - ``destination`` names where scores go (for the report), never a secret.
    """

    @property
    def destination(self) -> str: ...

    async def send(self, score: Score) -> None: ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True, slots=True)
class RecordedTurn:
    """A production chat turn read back from the tracing backend: the user's message and the
    reply (as text), when it started, its latency in seconds (None if unknown), a page showing
    it, and which of the asked-about score names it already carries."""

    trace_id: str
    input: str
    output: str
    at: datetime
    latency: float | None = None
    url: str | None = None
    scored: frozenset[str] = field(default_factory=frozenset)


class TraceSource(Protocol):
    """Recent production turns.

    ``recent_turns`` returns every chat turn traced since ``since`` (all pages), oldest first,
    each with ``scored`` = the subset of ``score_names`` already on it; turns without a text
    input or output are left out (nothing to judge: content capture off, or a failed turn).
    Turns traced by ``parley eval`` itself are not production turns and are left out too.
    Raises :class:`TracesUnavailable`.
    """

    async def recent_turns(self, since: datetime, score_names: Collection[str]) -> list[RecordedTurn]: ...

    async def aclose(self) -> None: ...
