"""The steps of ``parley eval`` and ``parley eval compare``, given the agent and the judge
(built by the container, started by :func:`parley.bootstrap.running_evaluation`)."""

from __future__ import annotations

from collections.abc import Sequence
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
    LangfuseOutcome,
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
from parley.application.evaluation.runner import CaseResult, EvaluationRunner, RunnerLimits, TurnTracing
from parley.application.evaluation.scoring import ScoreUpload, send_scores
from parley.application.evaluation.summary import RunSummary, summarise
from parley.application.evaluation.traces import TraceRun, judge_recent_turns
from parley.ports.agent import ChatAgent
from parley.ports.judge import Judge
from parley.ports.scoring import ScoreSink, TraceSource, TracesUnavailable

NOT_CONFIGURED = "Langfuse not configured (LANGFUSE_PUBLIC_KEY / LANGFUSE_SECRET_KEY unset): nothing sent"


@dataclass(frozen=True, slots=True)
class EvaluationParts:
    """The agent under evaluation (with its model's name) and the judge."""

    agent: ChatAgent
    agent_model: ModelInfo
    judge: Judge
    # Langfuse, when its keys are set: each case traced, its scores sent, production turns read.
    tracing: TurnTracing | None = None
    scores: ScoreSink | None = None
    traces: TraceSource | None = None

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
    runner = EvaluationRunner(parts.agent, parts.judge, options.limits, parts.tracing)
    with show.progress_bar(console, len(dataset.cases)) as progress:
        results = await runner.run(
            dataset.cases, metrics, on_case_done=lambda _: progress.advance(progress.task_ids[0])
        )
    langfuse = await _send(parts, results, options, console, "each case traced, scores on its last turn")
    summary = summarise(
        results,
        metrics,
        threshold=options.threshold,
        agent_model=parts.agent_model.name,
        judge_model=parts.judge_model.name,
    )
    show.show_failures(console, results)
    configuration = _configuration(str(dataset.path), metrics, options)
    paths = _show_and_write(
        parts,
        created_at,
        configuration,
        summary,
        results,
        metrics,
        options,
        console,
        problems=dataset.problems,
        langfuse=langfuse,
    )
    return RunOutcome(summary, *paths, _exit_code(summary, options.fail_under, console))


async def run_trace_evaluation(
    parts: EvaluationParts,
    since: datetime,
    limit: int | None,
    metrics: list[Metric],
    options: RunOptions,
    console: Console,
) -> RunOutcome | None:
    """``parley eval traces``: judge the production turns traced since ``since`` that lack
    these metrics' scores, send the scores, show and write the summary like a dataset run.

    None (after saying why, in red) when Langfuse is not configured or cannot be read.
    """
    show.show_models(console, ModelInfo("production traces", is_llm=True), parts.judge_model)
    if parts.traces is None or parts.scores is None:
        console.print(f"[red]{NOT_CONFIGURED}[/]: parley eval traces reads its turns from Langfuse.")
        return None
    created_at = datetime.now(UTC)
    runner = EvaluationRunner(parts.agent, parts.judge, options.limits)
    try:
        run = await judge_recent_turns(
            parts.traces, runner, metrics, since=since, limit=limit, concurrency=options.limits.concurrency
        )
    except TracesUnavailable as unreadable:
        console.print(
            f"[red]Cannot read traces from {escape(parts.scores.destination)}: {escape(str(unreadable))}[/]"
        )
        return None
    console.print(
        f"{run.fetched} turn(s) traced since {since.isoformat(timespec='seconds')}, "
        f"{run.already_scored} already scored, {len(run.results)} judged; "
        f"metrics: {', '.join(m.name for m in metrics)}"
    )
    langfuse = await _send(parts, run.results, options, console, "production turns judged", run, since)
    summary = summarise(
        run.results,
        metrics,
        threshold=options.threshold,
        agent_model="production",
        judge_model=parts.judge_model.name,
    )
    configuration = _configuration(f"langfuse traces since {since.isoformat()}", metrics, options)
    paths = _show_and_write(
        parts,
        created_at,
        configuration,
        summary,
        run.results,
        metrics,
        options,
        console,
        langfuse=langfuse,
        agent=ModelInfo("production traces", is_llm=True),
    )
    if not run.results:
        return RunOutcome(summary, *paths, 0)
    return RunOutcome(summary, *paths, _exit_code(summary, options.fail_under, console))


async def _send(
    parts: EvaluationParts,
    results: Sequence[CaseResult],
    options: RunOptions,
    console: Console,
    note: str,
    traces: TraceRun | None = None,
    since: datetime | None = None,
) -> LangfuseOutcome:
    """Send the scores when Langfuse is configured; say what happened either way."""
    if parts.scores is None:
        console.print(f"[dim]{NOT_CONFIGURED}[/]")
        return LangfuseOutcome(note=NOT_CONFIGURED)
    upload = await send_scores(parts.scores, results, concurrency=options.limits.concurrency)
    _show_upload(console, upload)
    return LangfuseOutcome(note=note, upload=upload, traces=traces, since=since)


def _show_upload(console: Console, upload: ScoreUpload) -> None:
    colour = "red" if upload.failed else "green"
    console.print(
        f"[{colour}]{upload.sent} score(s) sent to {escape(upload.destination)}, {upload.failed} failed[/]"
        + (f", {upload.untraced} case(s) without a trace" if upload.untraced else ""),
        highlight=False,
    )
    for error in upload.errors:
        console.print(f"[red]  {escape(error)}[/]", highlight=False)


def _show_and_write(
    parts: EvaluationParts,
    created_at: datetime,
    configuration: RunConfiguration,
    summary: RunSummary,
    results: Sequence[CaseResult],
    metrics: Sequence[Metric],
    options: RunOptions,
    console: Console,
    *,
    langfuse: LangfuseOutcome,
    problems: Sequence[str] = (),
    agent: ModelInfo | None = None,
) -> tuple[Path | None, Path | None]:
    """The summary tables, then the JSON and HTML reports unless ``reports_dir`` is None."""
    console.print(show.summary_table(summary, judge=parts.judge_model))
    console.print(show.totals_table(summary))
    if options.reports_dir is None:
        return None, None
    report = build_report(
        created_at=created_at,
        configuration=configuration,
        agent=agent or parts.agent_model,
        judge=parts.judge_model,
        summary=summary,
        results=results,
        metrics=metrics,
        dataset_problems=problems,
        commit=git_commit(),
        langfuse=langfuse,
    )
    json_path = report_path(options.reports_dir, created_at)
    write_report(report, json_path)
    html_path = json_path.with_suffix(".html")
    html_path.write_text(render_html(report), encoding="utf-8")
    console.print(f"Report: [bold]{json_path}[/] and {html_path.name}", highlight=False)
    return json_path, html_path


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


def _configuration(source: str, metrics: list[Metric], options: RunOptions) -> RunConfiguration:
    """What the report records of how the run was made; ``source``: the dataset or the traces."""
    return RunConfiguration(
        dataset=source,
        metrics=tuple(m.name for m in metrics),
        concurrency=options.limits.concurrency,
        timeout_seconds=options.limits.timeout,
        retries=options.limits.retries,
        threshold=options.threshold,
    )
