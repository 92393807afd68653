"""The steps of ``parley eval`` and ``parley eval compare``, given the agent and the judge
(built by the container, started by :func:`parley.bootstrap.running_evaluation`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from parley.adapters.inbound.evaluation import console as show
from parley.adapters.inbound.evaluation.compare import compare_reports
from parley.adapters.inbound.evaluation.datasets import Dataset
from parley.adapters.inbound.evaluation.html_report import render_html
from parley.adapters.inbound.evaluation.reports import (
    ModelInfo,
    ReportError,
    RunConfiguration,
    build_report,
    git_commit,
    read_report,
    report_path,
    write_report,
)
from parley.application.evaluation.cases import Metric
from parley.application.evaluation.runner import EvaluationRunner, RunnerLimits
from parley.application.evaluation.summary import RunSummary, summarise
from parley.ports.agent import ChatAgent
from parley.ports.judge import Judge


@dataclass(frozen=True, slots=True)
class EvaluationParts:
    """The agent under evaluation (with its model's name) and the judge."""

    agent: ChatAgent
    agent_model: ModelInfo
    judge: Judge

    @property
    def judge_model(self) -> ModelInfo:
        return ModelInfo(self.judge.name, self.judge.is_llm)


@dataclass(frozen=True, slots=True)
class RunOptions:
    limits: RunnerLimits
    threshold: float
    reports_dir: Path | None  # None: print only (--no-report)
    fail_under: float | None = None


@dataclass(frozen=True, slots=True)
class RunOutcome:
    summary: RunSummary
    json_path: Path | None
    html_path: Path | None
    exit_code: int


async def run_evaluation(
    parts: EvaluationParts, dataset: Dataset, metrics: list[Metric], options: RunOptions, console: Console
) -> RunOutcome:
    """Run every case, show the summary, write the reports (unless ``reports_dir`` is None).

    Exit code 0; 1 when ``fail_under`` is set and a metric's mean is under it (or has none),
    or when no case succeeded.
    """
    show.show_models(console, parts.agent_model, parts.judge_model)
    show.show_problems(console, dataset.problems)
    console.print(
        f"{len(dataset.cases)} case(s) from {dataset.path.name}, metrics: "
        f"{', '.join(m.name for m in metrics) or '(none)'}, concurrency {options.limits.concurrency}"
    )
    created_at = datetime.now(UTC)
    runner = EvaluationRunner(parts.agent, parts.judge, options.limits)
    with show.progress_bar(console, len(dataset.cases)) as progress:
        results = await runner.run(
            dataset.cases, metrics, on_case_done=lambda _: progress.advance(progress.task_ids[0])
        )
    summary = summarise(
        results,
        metrics,
        threshold=options.threshold,
        agent_model=parts.agent_model.name,
        judge_model=parts.judge_model.name,
    )
    show.show_failures(console, results)
    console.print(show.summary_table(summary, judge=parts.judge_model))
    console.print(show.totals_table(summary))
    json_path = html_path = None
    if options.reports_dir is not None:
        report = build_report(
            created_at=created_at,
            configuration=RunConfiguration(
                dataset=str(dataset.path),
                metrics=tuple(m.name for m in metrics),
                concurrency=options.limits.concurrency,
                timeout_seconds=options.limits.timeout,
                retries=options.limits.retries,
                threshold=options.threshold,
            ),
            agent=parts.agent_model,
            judge=parts.judge_model,
            summary=summary,
            results=results,
            metrics=metrics,
            dataset_problems=dataset.problems,
            commit=git_commit(),
        )
        json_path = report_path(options.reports_dir, created_at)
        write_report(report, json_path)
        html_path = json_path.with_suffix(".html")
        html_path.write_text(render_html(report), encoding="utf-8")
        console.print(f"Report: [bold]{json_path}[/] and {html_path.name}", highlight=False)
    return RunOutcome(summary, json_path, html_path, _exit_code(summary, options.fail_under, console))


def _exit_code(summary: RunSummary, fail_under: float | None, console: Console) -> int:
    if summary.cases and not summary.succeeded:
        console.print("[red]No case succeeded.[/]")
        return 1
    if fail_under is None:
        return 0
    low = [m.metric for m in summary.metrics if m.mean is None or m.mean < fail_under]
    if low:
        console.print(f"[red]Under --fail-under {fail_under}: {', '.join(low)}[/]")
        return 1
    return 0


def compare_files(
    baseline: Path,
    candidate: Path,
    console: Console,
    *,
    fail_under: float | None = None,
    max_regression: float | None = None,
) -> int:
    """Show the comparison; 0 when the gates pass, 1 when one fails, 2 when a file is not a report."""
    try:
        old, new = read_report(baseline), read_report(candidate)
    except ReportError as bad:
        console.print(f"[red]{escape(str(bad))}[/]", highlight=False)
        return 2
    comparison = compare_reports(old, new)
    console.print(f"baseline  {baseline.name} ({old.get('git_commit') or 'no commit'})", highlight=False)
    console.print(f"candidate {candidate.name} ({new.get('git_commit') or 'no commit'})", highlight=False)
    console.print(show.comparison_table(comparison))
    console.print(show.worse_table(comparison))
    problems = comparison.failures(fail_under=fail_under, max_regression=max_regression)
    for problem in problems:
        console.print(f"[red]gate failed[/] {escape(problem)}", highlight=False)
    return 1 if problems else 0
