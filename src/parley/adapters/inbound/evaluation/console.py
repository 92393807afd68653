"""What ``parley eval`` shows on the terminal (rich): the models, a progress bar, the summary
table, the comparison; and the questions of the interactive mode."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.prompt import IntPrompt, Prompt
from rich.table import Table

from parley.adapters.inbound.evaluation.compare import Comparison
from parley.adapters.inbound.evaluation.reports import ModelInfo
from parley.application.evaluation.cases import Metric
from parley.application.evaluation.runner import CaseResult
from parley.application.evaluation.summary import RunSummary


def _fmt(value: float | None, digits: int = 3, suffix: str = "") -> str:
    return "n/a" if value is None else f"{value:.{digits}f}{suffix}"


def _coloured(value: float | None, threshold: float) -> str:
    if value is None:
        return "[dim]n/a[/]"
    return f"[{'green' if value >= threshold else 'red'}]{value:.3f}[/]"


def show_models(console: Console, agent: ModelInfo, judge: ModelInfo) -> None:
    for role, info in (("agent", agent), ("judge", judge)):
        if info.is_llm:
            console.print(f"[bold]{role}[/]: {escape(info.name)}")
        else:
            console.print(f"[bold]{role}[/]: [yellow]{escape(info.name)} -- not an LLM[/]")


def show_problems(console: Console, problems: Sequence[str]) -> None:
    for problem in problems:
        console.print(f"[yellow]skipped[/] {escape(problem)}", highlight=False)


@contextmanager
def progress_bar(console: Console, total: int) -> Iterator[Progress]:
    """A bar advanced once per finished case (drawn only on a terminal)."""
    progress = Progress(
        TextColumn("[bold blue]evaluating"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )
    with progress:
        progress.add_task("cases", total=total)
        yield progress


def summary_table(summary: RunSummary, *, judge: ModelInfo) -> Table:
    # Text from files and models is escaped: "[not an LLM]" is not rich markup.
    table = Table(title=f"Scores (judge: {escape(judge.label)})", title_justify="left")
    for column in ("metric", "mean", "pass rate", "threshold", "scored", "errors"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    for m in summary.metrics:
        table.add_row(
            escape(m.metric),
            _coloured(m.mean, m.threshold),
            _fmt(None if m.pass_rate is None else m.pass_rate * 100, 1, " %"),
            f"{m.threshold:.2f}",
            str(m.scored),
            f"[red]{m.errors}[/]" if m.errors else "0",
        )
    return table


def totals_table(summary: RunSummary) -> Table:
    table = Table(title="Run", title_justify="left", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    rate = summary.success_rate * 100
    table.add_row(
        "cases succeeded",
        f"[{'green' if rate == 100 else 'red'}]{summary.succeeded}/{summary.cases} ({rate:.1f} %)[/]",
    )
    table.add_row("latency p50 / p95", f"{_fmt(summary.latency_p50)} s / {_fmt(summary.latency_p95)} s")
    table.add_row("time to first token p50", f"{_fmt(summary.first_token_p50)} s")
    table.add_row("tool accuracy", _fmt(summary.tool_accuracy))
    table.add_row(
        "tokens agent (in/out)", f"{summary.agent_prompt_tokens} / {summary.agent_completion_tokens}"
    )
    table.add_row(
        "tokens judge (in/out)", f"{summary.judge_prompt_tokens} / {summary.judge_completion_tokens}"
    )
    cost = summary.estimated_cost
    table.add_row("estimated cost", "n/a (unknown price)" if cost is None else f"${cost:.4f}")
    return table


def show_failures(console: Console, results: Sequence[CaseResult], limit: int = 5) -> None:
    failed = [r for r in results if not r.succeeded]
    for result in failed[:limit]:
        console.print(
            f"[red]failed[/] {escape(result.case.id)}: {escape(result.error or '')}", highlight=False
        )
    errors = [(r.case.id, v) for r in results for v in r.metrics.values() if v.error]
    for case_id, verdict in errors[:limit]:
        console.print(
            f"[red]no verdict[/] {escape(case_id)} / {escape(verdict.metric)}: {escape(verdict.error or '')}",
            highlight=False,
        )


def comparison_table(comparison: Comparison) -> Table:
    table = Table(title="Per-metric means", title_justify="left")
    for column in ("metric", "baseline", "candidate", "delta"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    for m in comparison.metrics:
        delta = m.delta
        shown = "n/a" if delta is None else f"[{'red' if delta < 0 else 'green'}]{delta:+.3f}[/]"
        table.add_row(escape(m.metric), _fmt(m.baseline), _fmt(m.candidate), shown)
    return table


def worse_table(comparison: Comparison, limit: int = 20) -> Table:
    table = Table(title=f"Cases that got worse ({len(comparison.worse)})", title_justify="left")
    for column in ("case", "metric", "change"):
        table.add_column(column)
    for worse in comparison.worse[:limit]:
        table.add_row(escape(worse.case_id), escape(worse.metric or "-"), escape(worse.note))
    return table


def ask_dataset(console: Console, choices: Sequence[Path], default: Path) -> Path:
    names = [path.name for path in choices] or [default.name]
    answer = Prompt.ask("Dataset", console=console, choices=names, default=default.name)
    return next((path for path in choices if path.name == answer), default)


def ask_metrics(console: Console, metrics: Sequence[Metric]) -> list[str]:
    names = [metric.name for metric in metrics]
    while True:
        answer = Prompt.ask(f"Metrics ({', '.join(names)}; comma-separated)", console=console, default="all")
        if answer.strip().lower() == "all":
            return names
        chosen = [name.strip() for name in answer.split(",") if name.strip()]
        unknown = [name for name in chosen if name not in names]
        if chosen and not unknown:
            return chosen
        console.print(f"[red]unknown metric(s): {', '.join(unknown) or '(none given)'}[/]")


def ask_model(console: Console, default: str, *, offline: bool) -> str:
    if offline:
        console.print("[yellow]No LLM_API_KEY: the agent is the offline model (not an LLM).[/]")
    return Prompt.ask("Agent model (LLM_MODEL)", console=console, default=default)


def ask_concurrency(console: Console, default: int) -> int:
    while True:
        value = IntPrompt.ask("Concurrency (cases at once)", console=console, default=default)
        if 1 <= value <= 64:
            return value
        console.print("[red]between 1 and 64[/]")
