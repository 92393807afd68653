"""Judging recent production turns (``parley eval traces``) instead of a dataset.

Rules:
- the turns come from a :class:`TraceSource` (every page since ``since``), oldest first;
- a turn is judged only on the metrics it carries no score of yet; a turn that already
  carries all of them is skipped (counted); so a second run over the same window judges
  nothing twice;
- ``limit`` caps the turns judged (after skipping), the oldest first;
- each turn becomes a one-exchange :class:`CaseResult` (its case id is the trace id, its
  trace link the turn's own), judged by the runner's bounded, retried judge, ``concurrency``
  turns at a time; a metric that needs a reference answer never applies (production turns
  have none).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from parley.application.evaluation.cases import Case, Metric
from parley.application.evaluation.runner import CaseResult, EvaluationRunner, TurnResult
from parley.ports.scoring import RecordedTurn, TraceSource
from parley.ports.tracing import TraceLink


@dataclass(slots=True)
class TraceRun:
    """The turns read (``fetched``), those skipped as already scored, and the judged ones."""

    fetched: int
    already_scored: int
    results: list[CaseResult] = field(default_factory=list)


def as_case_result(turn: RecordedTurn) -> CaseResult:
    """A production turn as a judged-to-be case of one exchange, linked to its trace."""
    return CaseResult(
        case=Case(id=turn.trace_id, turns=(turn.input,), tags=("production",)),
        turns=[
            TurnResult(
                user=turn.input,
                reply=turn.output,
                latency=turn.latency or 0.0,
                trace=TraceLink(turn.trace_id, turn.url),
            )
        ],
        attempts=1,
    )


async def judge_recent_turns(
    source: TraceSource,
    runner: EvaluationRunner,
    metrics: Sequence[Metric],
    *,
    since: datetime,
    limit: int | None = None,
    concurrency: int = 4,
) -> TraceRun:
    """Read, skip, judge (see the module docstring); raises ``TracesUnavailable`` when the
    turns cannot be read (nothing is judged then)."""
    names = [metric.name for metric in metrics]
    turns = await source.recent_turns(since, names)
    due = [(turn, [m for m in metrics if m.name not in turn.scored]) for turn in turns]
    todo = [(turn, missing) for turn, missing in due if missing]
    if limit is not None:
        todo = todo[:limit]
    run = TraceRun(fetched=len(turns), already_scored=len(due) - sum(1 for _, missing in due if missing))
    gate = asyncio.Semaphore(max(1, concurrency))

    async def one(turn: RecordedTurn, missing: list[Metric]) -> CaseResult:
        result = as_case_result(turn)
        async with gate:
            await runner.judge(result, missing)
        return result

    run.results = list(await asyncio.gather(*(one(turn, missing) for turn, missing in todo)))
    return run
