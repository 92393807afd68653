"""The figures of a run: per metric (mean, pass rate against a threshold, errors) and overall
(success rate, latency percentiles, tokens, an estimated cost)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from parley.application.evaluation.cases import Metric
from parley.application.evaluation.runner import CaseResult

# US dollars per million (prompt, completion) tokens, list prices; an estimate only. A model
# not listed has no estimate (None), rather than a wrong one. Matched by prefix, longest first.
PRICES_PER_MILLION: dict[str, tuple[float, float]] = {
    "offline": (0.0, 0.0),
    "heuristic": (0.0, 0.0),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4o": (2.50, 10.00),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-3.5-turbo": (0.50, 1.50),
}


def price_of(model: str) -> tuple[float, float] | None:
    for prefix in sorted(PRICES_PER_MILLION, key=len, reverse=True):
        if model.startswith(prefix):
            return PRICES_PER_MILLION[prefix]
    return None


def estimated_cost(model: str, prompt_tokens: int, completion_tokens: int) -> float | None:
    """Dollars, from the list price of ``model``; None when its price is unknown."""
    price = price_of(model)
    if price is None:
        return None
    return (prompt_tokens * price[0] + completion_tokens * price[1]) / 1_000_000


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """The ``fraction`` percentile (0.95 for p95) by linear interpolation; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass(frozen=True, slots=True)
class MetricSummary:
    """``scored``: cases with a score; ``errors``: cases whose verdict failed; ``mean`` and
    ``pass_rate`` (score >= ``threshold``) over the scored cases (None when there is none)."""

    metric: str
    threshold: float
    scored: int
    errors: int
    mean: float | None
    pass_rate: float | None


@dataclass(frozen=True, slots=True)
class RunSummary:
    cases: int
    succeeded: int
    latency_p50: float | None
    latency_p95: float | None
    first_token_p50: float | None
    agent_prompt_tokens: int
    agent_completion_tokens: int
    judge_prompt_tokens: int
    judge_completion_tokens: int
    estimated_cost: float | None
    tool_accuracy: float | None
    metrics: tuple[MetricSummary, ...]

    @property
    def success_rate(self) -> float:
        return self.succeeded / self.cases if self.cases else 0.0


def summarise(
    results: Sequence[CaseResult],
    metrics: Sequence[Metric],
    *,
    threshold: float,
    agent_model: str,
    judge_model: str,
) -> RunSummary:
    """The run's figures; latency percentiles are per agent turn."""
    turns = [turn for result in results for turn in result.turns]
    first_tokens = [t.time_to_first_token for t in turns if t.time_to_first_token is not None]
    agent_in = sum(r.prompt_tokens for r in results)
    agent_out = sum(r.completion_tokens for r in results)
    verdicts = [v for r in results for v in r.metrics.values()]
    judge_in = sum(v.prompt_tokens for v in verdicts)
    judge_out = sum(v.completion_tokens for v in verdicts)
    agent_cost = estimated_cost(agent_model, agent_in, agent_out)
    judge_cost = estimated_cost(judge_model, judge_in, judge_out)
    expected = [r.tool_as_expected for r in results if r.tool_as_expected is not None]
    return RunSummary(
        cases=len(results),
        succeeded=sum(r.succeeded for r in results),
        latency_p50=percentile([t.latency for t in turns], 0.50),
        latency_p95=percentile([t.latency for t in turns], 0.95),
        first_token_p50=percentile(first_tokens, 0.50),
        agent_prompt_tokens=agent_in,
        agent_completion_tokens=agent_out,
        judge_prompt_tokens=judge_in,
        judge_completion_tokens=judge_out,
        estimated_cost=None if agent_cost is None or judge_cost is None else agent_cost + judge_cost,
        tool_accuracy=sum(expected) / len(expected) if expected else None,
        metrics=tuple(_metric_summary(results, metric, threshold) for metric in metrics),
    )


def _metric_summary(results: Sequence[CaseResult], metric: Metric, threshold: float) -> MetricSummary:
    mark = metric.threshold if metric.threshold is not None else threshold
    verdicts = [r.metrics[metric.name] for r in results if metric.name in r.metrics]
    scores = [v.score for v in verdicts if v.score is not None]
    return MetricSummary(
        metric=metric.name,
        threshold=mark,
        scored=len(scores),
        errors=sum(v.score is None for v in verdicts),
        mean=sum(scores) / len(scores) if scores else None,
        pass_rate=sum(score >= mark for score in scores) / len(scores) if scores else None,
    )
