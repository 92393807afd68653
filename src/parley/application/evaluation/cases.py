"""What an evaluation is made of: cases (from a dataset) and metrics (from judge prompts)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Case:
    """One conversation to put to the agent: its user turns in order (at least one), and
    optionally the reference answer to the last turn, the tool the agent should call, tags."""

    id: str
    turns: tuple[str, ...]
    reference: str | None = None
    expected_tool: str | None = None
    tags: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.turns:
            raise ValueError("a case has at least one user turn")


@dataclass(frozen=True, slots=True)
class Metric:
    """A judge prompt: ``instructions`` tell the judge how to score in [0, 1] (1 is best).
    ``needs_reference``: scored only for cases that have a reference answer. ``threshold``:
    this metric's pass mark, when it differs from the run's."""

    name: str
    instructions: str
    needs_reference: bool = False
    threshold: float | None = None

    def applies_to(self, case: Case) -> bool:
        return case.reference is not None or not self.needs_reference
