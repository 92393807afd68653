"""The judge port: scores one reply of the agent on one metric (``parley eval``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


class JudgeError(Exception):
    """The judge gave no usable verdict (malformed answers or failed requests, after its
    retries); the runner records it for that case and metric and goes on."""


@dataclass(frozen=True, slots=True)
class Exchange:
    """One turn of the conversation being judged: what the user said, what the agent replied."""

    user: str
    reply: str


@dataclass(frozen=True, slots=True)
class JudgeRequest:
    """What the judge sees: the metric's instructions (its markdown prompt), the conversation
    (the last exchange is the one judged), the tools the agent called with their results, and
    the reference answer when the case has one."""

    metric: str
    instructions: str
    conversation: tuple[Exchange, ...]
    tool_results: tuple[str, ...] = ()
    reference: str | None = None

    @property
    def question(self) -> str:
        return self.conversation[-1].user if self.conversation else ""

    @property
    def reply(self) -> str:
        return self.conversation[-1].reply if self.conversation else ""


@dataclass(frozen=True, slots=True)
class Verdict:
    """A score in [0, 1] (1 is best, for every metric) and a short reason; ``prompt_tokens`` /
    ``completion_tokens`` are what the judge's model spent on it (0 for a heuristic)."""

    score: float
    reason: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    attempts: int = 1
    extra: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 0.0 <= self.score <= 1.0:
            raise ValueError(f"a score is in [0, 1], not {self.score}")


class Judge(Protocol):
    """Scores replies.

    Contract: ``score`` returns a :class:`Verdict` or raises :class:`JudgeError` (never
    another exception for a bad answer or a failed request); it retries malformed answers
    itself. ``name`` names the model (or heuristic); ``is_llm`` is False for a judge that is
    not a language model, which every output must say.
    """

    @property
    def name(self) -> str: ...

    @property
    def is_llm(self) -> bool: ...

    async def score(self, request: JudgeRequest) -> Verdict: ...

    async def aclose(self) -> None: ...
