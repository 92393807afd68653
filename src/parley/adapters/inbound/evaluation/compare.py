"""``parley eval compare BASELINE CANDIDATE``: per-metric deltas, the cases that got worse, and
the gates CI uses (``--fail-under``, ``--max-regression``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# A case's score has to drop by more than this to count as worse (judges are noisy).
CASE_DROP = 0.1


@dataclass(frozen=True, slots=True)
class MetricDelta:
    metric: str
    baseline: float | None
    candidate: float | None

    @property
    def delta(self) -> float | None:
        if self.baseline is None or self.candidate is None:
            return None
        return self.candidate - self.baseline


@dataclass(frozen=True, slots=True)
class WorseCase:
    """A case of both reports that the candidate did worse: a metric dropped by more than
    :data:`CASE_DROP`, or it failed where the baseline succeeded (``metric`` is then None)."""

    case_id: str
    metric: str | None
    baseline: float | None
    candidate: float | None
    note: str


@dataclass(frozen=True, slots=True)
class Comparison:
    metrics: tuple[MetricDelta, ...]
    worse: tuple[WorseCase, ...]

    def failures(self, *, fail_under: float | None, max_regression: float | None) -> list[str]:
        """Why the candidate fails the gates (empty: it passes)."""
        problems: list[str] = []
        for m in self.metrics:
            if fail_under is not None and m.candidate is not None and m.candidate < fail_under:
                problems.append(f"{m.metric}: mean {m.candidate:.3f} is under {fail_under:.3f}")
            delta = m.delta
            if max_regression is not None and delta is not None and -delta > max_regression:
                problems.append(f"{m.metric}: mean fell by {-delta:.3f} (more than {max_regression:.3f})")
        return problems


def _mean(report: dict[str, Any], metric: str) -> float | None:
    value = report["metrics"].get(metric, {}).get("mean")
    return float(value) if isinstance(value, int | float) else None


def _scores(case: dict[str, Any]) -> dict[str, float | None]:
    return {name: verdict.get("score") for name, verdict in (case.get("metrics") or {}).items()}


def compare_reports(baseline: dict[str, Any], candidate: dict[str, Any]) -> Comparison:
    """Metrics of either report (the baseline's first), and the worse cases, worst first."""
    names = list(baseline["metrics"]) + [m for m in candidate["metrics"] if m not in baseline["metrics"]]
    deltas = tuple(MetricDelta(name, _mean(baseline, name), _mean(candidate, name)) for name in names)
    before = {str(case.get("id")): case for case in baseline["cases"]}
    worse: list[WorseCase] = []
    for case in candidate["cases"]:
        case_id = str(case.get("id"))
        old = before.get(case_id)
        if old is None:
            continue
        if case.get("error") and not old.get("error"):
            worse.append(WorseCase(case_id, None, None, None, f"failed: {case['error']}"))
            continue
        old_scores, new_scores = _scores(old), _scores(case)
        for metric, new in new_scores.items():
            was = old_scores.get(metric)
            if was is None:
                continue
            if new is None:
                worse.append(WorseCase(case_id, metric, was, None, "no verdict now"))
            elif was - new > CASE_DROP:
                worse.append(WorseCase(case_id, metric, was, new, f"{was:.2f} -> {new:.2f}"))
    worse.sort(key=lambda w: -(w.baseline or 1.0) + (w.candidate or 0.0))
    return Comparison(deltas, tuple(worse))
