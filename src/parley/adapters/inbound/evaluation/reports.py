"""Reports: ``evaluation_report_YYYYMMDD_HHMMSS.json`` (configuration, models, git commit,
totals, every case) and the HTML page beside it; comparing two reports.

The JSON layout is described by ``evaluation/report.schema.json`` (``schema_version``
changes when a field's meaning does).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from parley.application.evaluation.cases import Metric
from parley.application.evaluation.runner import CaseResult, TurnResult
from parley.application.evaluation.scoring import ScoreUpload
from parley.application.evaluation.summary import RunSummary
from parley.application.evaluation.traces import TraceRun

SCHEMA_VERSION = 1
REPORT_PREFIX = "evaluation_report_"


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """A model taking part in a run; ``is_llm`` False for the offline model or heuristic judge."""

    name: str
    is_llm: bool

    @property
    def label(self) -> str:
        return self.name if self.is_llm else f"{self.name} [not an LLM]"


@dataclass(frozen=True, slots=True)
class RunConfiguration:
    dataset: str
    metrics: tuple[str, ...]
    concurrency: int
    timeout_seconds: float
    retries: int
    threshold: float


@dataclass(frozen=True, slots=True)
class LangfuseOutcome:
    """The report's ``langfuse`` part: ``upload`` None when nothing was sent (``note`` says
    why); ``traces`` and ``since`` for ``parley eval traces``."""

    note: str
    upload: ScoreUpload | None = None
    traces: TraceRun | None = None
    since: datetime | None = None

    def as_json(self) -> dict[str, Any]:
        upload = self.upload
        return {
            "enabled": upload is not None,
            "note": self.note,
            "destination": upload.destination if upload else None,
            "scores_sent": upload.sent if upload else 0,
            "scores_failed": upload.failed if upload else 0,
            "untraced_cases": upload.untraced if upload else 0,
            "errors": list(upload.errors) if upload else [],
            "traces": (
                None
                if self.traces is None or self.since is None
                else {
                    "since": self.since.isoformat(),
                    "fetched": self.traces.fetched,
                    "already_scored": self.traces.already_scored,
                }
            ),
        }


def git_commit(directory: Path | None = None) -> str | None:
    """The checked-out commit, or None outside a git checkout (or without git)."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"],  # noqa: S607 - git from PATH, as a developer runs it
            cwd=directory,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None


def _turn(turn: TurnResult) -> dict[str, Any]:
    return {
        "user": turn.user,
        "reply": turn.reply,
        "latency_seconds": round(turn.latency, 4),
        "time_to_first_token_seconds": (
            None if turn.time_to_first_token is None else round(turn.time_to_first_token, 4)
        ),
        "tool_calls": [
            {"name": call.name, "arguments": call.arguments, "result": call.result}
            for call in turn.tool_calls
        ],
        "prompt_tokens": turn.prompt_tokens,
        "completion_tokens": turn.completion_tokens,
        "models": list(turn.models),
    }


def _case(result: CaseResult) -> dict[str, Any]:
    case = result.case
    return {
        "id": case.id,
        "tags": list(case.tags),
        "reference": case.reference,
        "expected_tool": case.expected_tool,
        "tool_as_expected": result.tool_as_expected,
        "error": result.error,
        "attempts": result.attempts,
        "latency_seconds": round(result.latency, 4),
        "prompt_tokens": result.prompt_tokens,
        "completion_tokens": result.completion_tokens,
        "trace_id": result.trace.trace_id if result.trace else None,
        "trace_url": result.trace.url if result.trace else None,
        "turns": [_turn(turn) for turn in result.turns],
        "metrics": {
            name: {
                "score": verdict.score,
                "reason": verdict.reason,
                "error": verdict.error,
                "attempts": verdict.attempts,
                "prompt_tokens": verdict.prompt_tokens,
                "completion_tokens": verdict.completion_tokens,
            }
            for name, verdict in result.metrics.items()
        },
    }


def _rounded(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def build_report(
    *,
    created_at: datetime,
    configuration: RunConfiguration,
    agent: ModelInfo,
    judge: ModelInfo,
    summary: RunSummary,
    results: Sequence[CaseResult],
    metrics: Sequence[Metric],
    dataset_problems: Sequence[str] = (),
    commit: str | None = None,
    langfuse: LangfuseOutcome | None = None,
) -> dict[str, Any]:
    """The report as JSON-ready data (see ``evaluation/report.schema.json``)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "created_at": created_at.isoformat(),
        "git_commit": commit,
        "configuration": {
            "dataset": configuration.dataset,
            "metrics": list(configuration.metrics),
            "concurrency": configuration.concurrency,
            "timeout_seconds": configuration.timeout_seconds,
            "retries": configuration.retries,
            "threshold": configuration.threshold,
        },
        "models": {
            "agent": {"name": agent.name, "is_llm": agent.is_llm},
            "judge": {"name": judge.name, "is_llm": judge.is_llm},
        },
        "metric_definitions": {
            metric.name: {"needs_reference": metric.needs_reference, "threshold": metric.threshold}
            for metric in metrics
        },
        "totals": {
            "cases": summary.cases,
            "succeeded": summary.succeeded,
            "success_rate": round(summary.success_rate, 4),
            "latency_p50_seconds": _rounded(summary.latency_p50),
            "latency_p95_seconds": _rounded(summary.latency_p95),
            "time_to_first_token_p50_seconds": _rounded(summary.first_token_p50),
            "tool_accuracy": _rounded(summary.tool_accuracy),
            "tokens": {
                "agent_prompt": summary.agent_prompt_tokens,
                "agent_completion": summary.agent_completion_tokens,
                "judge_prompt": summary.judge_prompt_tokens,
                "judge_completion": summary.judge_completion_tokens,
            },
            "estimated_cost_usd": _rounded(summary.estimated_cost, 6),
        },
        "metrics": {
            m.metric: {
                "threshold": m.threshold,
                "mean": _rounded(m.mean),
                "pass_rate": _rounded(m.pass_rate),
                "scored": m.scored,
                "errors": m.errors,
            }
            for m in summary.metrics
        },
        "dataset_problems": list(dataset_problems),
        "langfuse": (langfuse or LangfuseOutcome(note="Langfuse not configured: nothing sent")).as_json(),
        "cases": [_case(result) for result in results],
    }


def report_path(directory: Path, created_at: datetime) -> Path:
    """``<directory>/evaluation_report_YYYYMMDD_HHMMSS.json``; a second run in the same second
    gets ``_2``, ``_3``... rather than overwriting the first."""
    stem = f"{REPORT_PREFIX}{created_at:%Y%m%d_%H%M%S}"
    path, number = directory / f"{stem}.json", 1
    while path.exists():
        number += 1
        path = directory / f"{stem}_{number}.json"
    return path


def write_report(report: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


class ReportError(ValueError):
    """A file is not an evaluation report (the message says why)."""


def read_report(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as bad:
        raise ReportError(f"{path}: cannot read a report ({bad})") from None
    if not isinstance(data, dict) or data.get("schema_version") != SCHEMA_VERSION:
        raise ReportError(f"{path}: not an evaluation report of schema version {SCHEMA_VERSION}")
    if not isinstance(data.get("metrics"), dict) or not isinstance(data.get("cases"), list):
        raise ReportError(f"{path}: an evaluation report has 'metrics' and 'cases'")
    return data
