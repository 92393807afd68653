"""``parley eval``: evaluate the agent on a dataset with an LLM judge; ``parley eval compare``.

Like :mod:`parley.cli`, this module imports only typer at module level (``parley --help`` and
uvicorn's workers import it): settings, the container, LangGraph and rich are imported inside
the commands.

Composition: the settings (``EVALUATION_*`` for the judge and the runner, ``LLM_*`` for the
agent) build the container, whose ``evaluation_agent`` is the app's agent with its memory in
this process (no database: evaluation conversations are thrown away after each case) and whose
``judge`` is the LLM judge, or the offline heuristic one when ``EVALUATION_API_KEY`` is unset.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from parley.adapters.inbound.evaluation.command import RunOptions
    from parley.adapters.inbound.evaluation.datasets import Dataset
    from parley.application.evaluation.cases import Metric
    from parley.config import Settings

eval_app = typer.Typer(
    help="Evaluate the agent: run a dataset, score each reply with a judge, write reports.",
    invoke_without_command=True,
    no_args_is_help=False,
)


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.secho(message, fg=typer.colors.RED, err=True)
    return typer.Exit(code=code)


def _settings(**overrides: Any) -> Settings:
    from parley.config import ConfigurationError, load_settings

    try:
        return load_settings(**overrides)
    except ConfigurationError as invalid:
        raise _fail(str(invalid)) from None


def _interactive(quick: bool) -> bool:
    return not quick and sys.stdin.isatty() and sys.stdout.isatty()


def _load_inputs(
    dataset_path: Path, metrics_dir: Path, only: list[str] | None
) -> tuple[Dataset, list[Metric]]:
    from parley.adapters.inbound.evaluation.datasets import load_dataset
    from parley.adapters.inbound.evaluation.metrics import MetricFileError, load_metrics

    try:
        dataset = load_dataset(dataset_path)
    except OSError as unreadable:
        raise _fail(f"cannot read the dataset {dataset_path}: {unreadable.strerror or unreadable}") from None
    try:
        metrics = load_metrics(metrics_dir, only)
    except MetricFileError as bad:
        raise _fail(str(bad)) from None
    if not metrics:
        raise _fail(f"no metric: {metrics_dir} has no *.md judge prompt")
    return dataset, metrics


def _ask(
    console: Console, settings: Settings, dataset: Path, concurrency: int
) -> tuple[Path, list[str], str, int]:
    """The interactive mode's four questions: dataset, metrics, agent model, concurrency."""
    from parley.adapters.inbound.evaluation import console as show
    from parley.adapters.inbound.evaluation.datasets import available_datasets
    from parley.adapters.inbound.evaluation.metrics import load_metrics

    directory = settings.evaluation.directory
    chosen = show.ask_dataset(console, available_datasets(directory / "datasets"), dataset)
    metrics = show.ask_metrics(console, load_metrics(directory / "metrics" / "prompts"))
    model = show.ask_model(console, settings.llm.model, offline=settings.llm.api_key is None)
    return chosen, metrics, model, show.ask_concurrency(console, concurrency)


@eval_app.callback()
def evaluate(
    context: typer.Context,
    quick: Annotated[bool, typer.Option("--quick", help="Use the defaults; ask nothing.")] = False,
    no_report: Annotated[
        bool, typer.Option("--no-report", help="Print the summary only; write no report.")
    ] = False,
    dataset: Annotated[
        Path | None, typer.Option(help="A .jsonl dataset (default: <EVALUATION_DIR>/datasets/default.jsonl)")
    ] = None,
    metrics: Annotated[
        str | None, typer.Option(help="Comma-separated metric names (default: every metric file)")
    ] = None,
    model: Annotated[str | None, typer.Option(help="The agent's model (default: LLM_MODEL)")] = None,
    concurrency: Annotated[
        int | None, typer.Option(min=1, max=64, help="Cases at once (default: EVALUATION_CONCURRENCY)")
    ] = None,
    threshold: Annotated[
        float | None, typer.Option(min=0, max=1, help="Pass mark of a score (default: EVALUATION_THRESHOLD)")
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Run only the first N cases")] = None,
    fail_under: Annotated[
        float | None, typer.Option(min=0, max=1, help="Exit 1 when a metric's mean is under this")
    ] = None,
) -> None:
    """Run a dataset through the agent and score each reply (interactive on a terminal, unless --quick)."""
    if context.invoked_subcommand is not None:
        return
    from rich.console import Console

    from parley.adapters.inbound.evaluation.command import run_evaluation
    from parley.bootstrap import running_evaluation
    from parley.container import Container
    from parley.log_setup import configure_logging

    console = Console(highlight=False)
    settings = _settings()
    chosen = dataset or settings.evaluation.directory / "datasets" / "default.jsonl"
    only = [name.strip() for name in metrics.split(",") if name.strip()] if metrics else None
    cases_at_once = concurrency or settings.evaluation.concurrency
    if _interactive(quick):
        chosen, only, model, cases_at_once = _ask(console, settings, chosen, cases_at_once)
    if model is not None and model != settings.llm.model:
        settings = _settings(llm={"model": model})
    loaded, chosen_metrics = _load_inputs(chosen, settings.evaluation.directory / "metrics" / "prompts", only)
    if limit is not None:
        loaded = type(loaded)(loaded.path, loaded.cases[:limit], loaded.problems)
    # The agent's own log lines (retries, tool errors) would break up the progress bar.
    configure_logging(level="WARNING", json_lines=False)
    options = _run_options(settings, cases_at_once, threshold, no_report=no_report, fail_under=fail_under)
    container = Container(settings=settings)

    async def run() -> int:
        async with running_evaluation(container) as parts:
            outcome = await run_evaluation(parts, loaded, chosen_metrics, options, console)
        return outcome.exit_code

    code = asyncio.run(run())
    if code:
        raise typer.Exit(code=code)


@eval_app.command()
def traces(
    since: Annotated[str, typer.Option(help="How far back: 30m, 24h, 7d")] = "24h",
    limit: Annotated[int | None, typer.Option(min=1, help="Judge at most N turns (the oldest first)")] = None,
    metrics: Annotated[
        str | None, typer.Option(help="Comma-separated metric names (default: every metric file)")
    ] = None,
    concurrency: Annotated[
        int | None, typer.Option(min=1, max=64, help="Turns at once (default: EVALUATION_CONCURRENCY)")
    ] = None,
    threshold: Annotated[
        float | None, typer.Option(min=0, max=1, help="Pass mark of a score (default: EVALUATION_THRESHOLD)")
    ] = None,
    no_report: Annotated[
        bool, typer.Option("--no-report", help="Print the summary only; write no report.")
    ] = False,
    fail_under: Annotated[
        float | None, typer.Option(min=0, max=1, help="Exit 1 when a metric's mean is under this")
    ] = None,
) -> None:
    """Judge recent production turns from Langfuse (all pages, skipping already-scored ones)
    and send the scores back to their traces."""
    from datetime import UTC, datetime

    from rich.console import Console

    from parley.adapters.inbound.evaluation.command import run_trace_evaluation
    from parley.adapters.inbound.evaluation.metrics import MetricFileError, load_metrics
    from parley.adapters.inbound.evaluation.since import BadWindow
    from parley.adapters.inbound.evaluation.since import since as window_start
    from parley.bootstrap import running_evaluation
    from parley.container import Container
    from parley.log_setup import configure_logging

    try:
        start = window_start(since, datetime.now(UTC))
    except BadWindow as bad:
        raise _fail(str(bad)) from None
    settings = _settings()
    only = [name.strip() for name in metrics.split(",") if name.strip()] if metrics else None
    try:
        chosen = load_metrics(settings.evaluation.directory / "metrics" / "prompts", only)
    except MetricFileError as bad:
        raise _fail(str(bad)) from None
    # Production turns have no reference answer: a metric that needs one never applies.
    chosen = [metric for metric in chosen if not metric.needs_reference]
    if not chosen:
        raise _fail("no metric to judge production turns with (those needing a reference do not apply)")
    configure_logging(level="WARNING", json_lines=False)
    options = _run_options(
        settings,
        concurrency or settings.evaluation.concurrency,
        threshold,
        no_report=no_report,
        fail_under=fail_under,
    )
    container = Container(settings=settings)

    async def run() -> int:
        async with running_evaluation(container) as parts:
            outcome = await run_trace_evaluation(
                parts, start, limit, chosen, options, Console(highlight=False)
            )
        return 2 if outcome is None else outcome.exit_code

    code = asyncio.run(run())
    if code:
        raise typer.Exit(code=code)


@eval_app.command()
def compare(
    baseline: Annotated[Path, typer.Argument(help="The report before the change")],
    candidate: Annotated[Path, typer.Argument(help="The report after it")],
    fail_under: Annotated[
        float | None, typer.Option(min=0, max=1, help="Exit 1 when a candidate metric's mean is under this")
    ] = None,
    max_regression: Annotated[
        float | None, typer.Option(min=0, max=1, help="Exit 1 when a metric's mean falls by more than this")
    ] = None,
) -> None:
    """Per-metric deltas between two reports and the cases that got worse (CI gate)."""
    from rich.console import Console

    from parley.adapters.inbound.evaluation.command import compare_files

    code = compare_files(
        baseline, candidate, Console(highlight=False), fail_under=fail_under, max_regression=max_regression
    )
    if code:
        raise typer.Exit(code=code)


def _run_options(
    settings: Settings,
    concurrency: int,
    threshold: float | None,
    *,
    no_report: bool,
    fail_under: float | None,
) -> RunOptions:
    """How a run goes: the command line's choices over the EVALUATION_* settings."""
    from parley.adapters.inbound.evaluation.command import RunOptions
    from parley.application.evaluation.runner import RunnerLimits

    return RunOptions(
        limits=RunnerLimits(
            concurrency=concurrency,
            timeout=settings.evaluation.timeout_seconds,
            retries=settings.evaluation.retries,
        ),
        threshold=threshold if threshold is not None else settings.evaluation.threshold,
        reports_dir=None if no_report else settings.evaluation.directory / "reports",
        fail_under=fail_under,
    )
