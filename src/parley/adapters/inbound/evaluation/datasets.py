"""Datasets: ``evaluation/datasets/<name>.jsonl``, one case per line.

A line is a JSON object: ``id`` (a unique string), ``turns`` (a list of user messages, in
order; ``input`` is accepted for a single turn), and optionally ``reference`` (the expected
answer to the last turn), ``expected_tool`` and ``tags``. Blank lines and lines starting with
``#`` are skipped. A malformed line is reported with its line number and skipped; it never
stops the load.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from parley.application.evaluation.cases import Case

NonEmpty = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class _CaseLine(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: NonEmpty
    turns: list[NonEmpty] = Field(default_factory=list)
    input: NonEmpty | None = None
    reference: NonEmpty | None = None
    expected_tool: NonEmpty | None = None
    tags: list[NonEmpty] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_way_to_say_the_turns(self) -> _CaseLine:
        if bool(self.turns) == (self.input is not None):
            raise ValueError("give either 'turns' (a non-empty list) or 'input', not both")
        return self

    def to_case(self) -> Case:
        turns = tuple(self.turns) if self.turns else (str(self.input),)
        return Case(self.id, turns, self.reference, self.expected_tool, tuple(self.tags))


@dataclass(frozen=True, slots=True)
class Dataset:
    """The cases read, and one message per skipped line (``"default.jsonl:7: ..."``)."""

    path: Path
    cases: tuple[Case, ...]
    problems: tuple[str, ...] = field(default=())


def load_dataset(path: Path) -> Dataset:
    """Read a dataset; raises ``OSError`` only when the file itself cannot be read."""
    cases: list[Case] = []
    problems: list[str] = []
    seen: set[str] = set()
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        where = f"{path.name}:{number}"
        try:
            case = _CaseLine.model_validate(json.loads(text)).to_case()
        except json.JSONDecodeError as bad:
            problems.append(f"{where}: not JSON ({bad.msg}, column {bad.colno}); line skipped")
            continue
        except ValidationError as invalid:
            problems.append(f"{where}: {_first_problem(invalid)}; line skipped")
            continue
        if case.id in seen:
            problems.append(f"{where}: duplicate id {case.id!r}; line skipped")
            continue
        seen.add(case.id)
        cases.append(case)
    return Dataset(path, tuple(cases), tuple(problems))


def _first_problem(invalid: ValidationError) -> str:
    error = invalid.errors()[0]
    where = ".".join(str(part) for part in error["loc"])
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


def available_datasets(directory: Path) -> list[Path]:
    """The ``*.jsonl`` files of ``directory``, by name."""
    return sorted(directory.glob("*.jsonl")) if directory.is_dir() else []
