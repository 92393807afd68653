"""``parley eval`` end to end: the real LangGraph agent (offline model, memory in-process), the
heuristic judge or an LLM judge on a local fake OpenAI-compatible server; reports, compare
gates, metric files and the interactive mode driven through a pseudo-terminal."""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from tests.fakes.openai_server import FakeOpenAIServer, FakeReply
from typer.testing import CliRunner, Result

from parley.cli import app

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "evaluation" / "report.schema.json").read_text())
_SETTINGS = (
    "LLM_API_KEY",
    "LLM_BASE_URL",
    "EVALUATION_API_KEY",
    "EVALUATION_BASE_URL",
    "EVALUATION_LLM",
    "EVALUATION_RETRIES",
    "EVALUATION_CONCURRENCY",
    "LANGFUSE_PUBLIC_KEY",
    "LANGFUSE_SECRET_KEY",
)


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of evaluation/ (datasets, metric prompts, empty reports/) in an empty folder, with
    no model keys set: the offline agent and the heuristic judge."""
    shutil.copytree(
        ROOT / "evaluation", tmp_path / "evaluation", ignore=shutil.ignore_patterns("*.json", "*.html")
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("EVALUATION_DIR", str(tmp_path / "evaluation"))
    for name in _SETTINGS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("parley.log_setup.configure_logging", lambda **_: None)
    return tmp_path / "evaluation"


def _eval(*arguments: str) -> Result:
    return CliRunner().invoke(app, ["eval", *arguments])


def _reports(directory: Path) -> list[Path]:
    return sorted((directory / "reports").glob("evaluation_report_*.json"))


def _only_report(directory: Path) -> dict[str, Any]:
    (path,) = _reports(directory)
    report: dict[str, Any] = json.loads(path.read_text())
    return report


def test_quick_runs_the_default_dataset_offline_and_writes_both_reports(workspace: Path) -> None:
    result = _eval("--quick")

    assert result.exit_code == 0, result.output
    (path,) = _reports(workspace)
    assert path.name[len("evaluation_report_") :].removesuffix(".json").replace("_", "").isdigit()
    report = json.loads(path.read_text())
    jsonschema.validate(report, SCHEMA)
    html = path.with_suffix(".html").read_text()
    assert "<svg" in html
    assert "not an LLM" in html

    cases = [json.loads(line) for line in (workspace / "datasets" / "default.jsonl").read_text().splitlines()]
    assert len(cases) >= 30
    assert [case["id"] for case in report["cases"]] == [case["id"] for case in cases]
    assert report["models"]["agent"] == {"name": "offline-echo", "is_llm": False}
    assert report["models"]["judge"] == {"name": "heuristic-judge", "is_llm": False}
    assert report["totals"]["success_rate"] == 1.0
    assert report["totals"]["tool_accuracy"] == 1.0  # the offline model calls calculator and current_time
    assert set(report["metrics"]) == {
        "relevancy",
        "helpfulness",
        "conciseness",
        "hallucination",
        "toxicity",
        "correctness",
    }
    with_reference = sum(1 for case in cases if "reference" in case)
    assert report["metrics"]["correctness"]["scored"] == with_reference < len(cases)
    multi = next(c for c in report["cases"] if c["id"] == "multi-name-recall")
    assert "I remember 1 earlier user message" in multi["turns"][1]["reply"]
    calc = next(c for c in report["cases"] if c["id"] == "calc-multiply")
    assert calc["turns"][0]["tool_calls"][0]["result"] == "391"
    assert "not an LLM" in result.output
    assert "Scores (judge: heuristic-judge [not an LLM])" in result.output
    assert "p50 / p95" in result.output


def test_no_report_prints_only(workspace: Path) -> None:
    result = _eval("--quick", "--no-report", "--limit", "2")

    assert result.exit_code == 0, result.output
    assert "relevancy" in result.output
    assert _reports(workspace) == []


def test_a_new_metric_file_is_a_new_metric(workspace: Path) -> None:
    (workspace / "metrics" / "prompts" / "politeness.md").write_text("Score how polite the reply is.")

    result = _eval("--quick", "--limit", "2")

    assert result.exit_code == 0, result.output
    assert "politeness" in result.output
    report = _only_report(workspace)
    assert report["metrics"]["politeness"]["scored"] == 2
    assert all("politeness" in case["metrics"] for case in report["cases"])


def test_a_malformed_dataset_line_is_named_and_skipped(workspace: Path) -> None:
    dataset = workspace / "datasets" / "broken.jsonl"
    dataset.write_text('{"id": "ok", "input": "What is 2 + 2?"}\n{"id": "bad", "turns": \n')

    result = _eval("--quick", "--dataset", str(dataset))

    assert result.exit_code == 0, result.output
    assert "broken.jsonl:2" in result.output
    report = _only_report(workspace)
    assert [case["id"] for case in report["cases"]] == ["ok"]
    assert report["dataset_problems"][0].startswith("broken.jsonl:2: not JSON")


def test_an_unknown_metric_or_missing_dataset_is_refused_clearly(workspace: Path) -> None:
    unknown = _eval("--quick", "--metrics", "relevancy,nonsense")
    missing = _eval("--quick", "--dataset", str(workspace / "nope.jsonl"))

    assert unknown.exit_code == 2
    assert "nonsense" in unknown.output
    assert missing.exit_code == 2
    assert "nope.jsonl" in missing.output
    assert "Traceback" not in unknown.output + missing.output


def test_the_llm_judge_retries_a_malformed_answer_then_records_its_verdict(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeOpenAIServer(default=FakeReply(text='{"score": 1, "reason": "fine"}')) as server:
        server.script(
            FakeReply(text="Sure! The score is high."), FakeReply(text='{"score": 0.8, "reason": "on topic"}')
        )
        monkeypatch.setenv("EVALUATION_API_KEY", "test-key")
        monkeypatch.setenv("EVALUATION_BASE_URL", server.base_url)
        monkeypatch.setenv("EVALUATION_LLM", "judge-model")

        result = _eval("--quick", "--limit", "1", "--metrics", "relevancy", "--concurrency", "1")
        requests = server.requests

    assert result.exit_code == 0, result.output
    report = _only_report(workspace)
    jsonschema.validate(report, SCHEMA)
    assert report["models"]["judge"] == {"name": "judge-model", "is_llm": True}
    verdict = report["cases"][0]["metrics"]["relevancy"]
    assert (verdict["score"], verdict["reason"], verdict["attempts"], verdict["error"]) == (
        0.8,
        "on topic",
        2,
        None,
    )
    assert verdict["prompt_tokens"] > 0
    assert len(requests) == 2
    first, second = requests
    assert first.body["response_format"]["type"] == "json_schema"
    assert first.body["model"] == "judge-model"
    assert "Score how **relevant**" in first.messages[0]["content"]
    assert "What is 17 * 23?" in first.messages[1]["content"]
    assert "That answer is invalid" in second.messages[-1]["content"]


def test_a_judge_that_never_answers_well_is_an_error_not_a_crash(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeOpenAIServer(default=FakeReply(text='{"score": 7, "reason": "way off the scale"}')) as server:
        monkeypatch.setenv("EVALUATION_API_KEY", "test-key")
        monkeypatch.setenv("EVALUATION_BASE_URL", server.base_url)
        monkeypatch.setenv("EVALUATION_RETRIES", "1")

        result = _eval("--quick", "--limit", "2", "--metrics", "relevancy")
        asked = len(server.requests)

    assert result.exit_code == 0, result.output
    assert asked == 4  # two cases, two attempts each
    report = _only_report(workspace)
    assert report["metrics"]["relevancy"] == {
        "threshold": 0.7,
        "mean": None,
        "pass_rate": None,
        "scored": 0,
        "errors": 2,
    }
    assert "malformed judge answer after 2 attempt(s)" in report["cases"][0]["metrics"]["relevancy"]["error"]
    assert "no verdict" in result.output


def test_fail_under_makes_the_run_exit_non_zero(workspace: Path) -> None:
    dataset = workspace / "datasets" / "capital.jsonl"
    # The offline model only echoes the question: no word of the reference in its reply.
    dataset.write_text('{"id": "capital", "input": "What is the capital of France?", "reference": "Paris"}\n')
    common = ("--quick", "--no-report", "--dataset", str(dataset), "--metrics", "relevancy,correctness")

    passing = _eval(*common, "--fail-under", "0.0")
    failing = _eval(*common, "--fail-under", "0.5")

    assert passing.exit_code == 0, passing.output
    assert failing.exit_code == 1, failing.output
    assert "Under --fail-under 0.5: correctness" in failing.output


def test_compare_shows_deltas_and_the_cases_that_got_worse_and_gates_ci(workspace: Path) -> None:
    assert _eval("--quick", "--limit", "6").exit_code == 0
    (baseline,) = _reports(workspace)
    report = json.loads(baseline.read_text())
    # Inject a regression: case 2's relevancy collapses, and the mean with it.
    report["cases"][1]["metrics"]["relevancy"]["score"] = 0.0
    report["metrics"]["relevancy"]["mean"] -= 0.5
    candidate = baseline.with_name("candidate.json")
    candidate.write_text(json.dumps(report))

    same = CliRunner().invoke(app, ["eval", "compare", str(baseline), str(baseline), "--max-regression", "0"])
    worse = CliRunner().invoke(
        app, ["eval", "compare", str(baseline), str(candidate), "--max-regression", "0.1"]
    )
    lenient = CliRunner().invoke(
        app, ["eval", "compare", str(baseline), str(candidate), "--max-regression", "0.6"]
    )
    under = CliRunner().invoke(
        app, ["eval", "compare", str(baseline), str(candidate), "--fail-under", "0.99"]
    )
    not_a_report = CliRunner().invoke(
        app, ["eval", "compare", str(baseline), str(workspace / "datasets" / "default.jsonl")]
    )

    assert same.exit_code == 0, same.output
    assert worse.exit_code == 1, worse.output
    assert report["cases"][1]["id"] in worse.output
    assert "-0.500" in worse.output
    assert "gate failed" in worse.output
    assert lenient.exit_code == 0, lenient.output
    assert under.exit_code == 1
    assert not_a_report.exit_code == 2
    assert "Traceback" not in not_a_report.output


def _read_until(fd: int, wanted: str, seen: list[str], timeout: float = 120.0) -> str:
    """Read the terminal until ``wanted`` appears (the process starts slowly on a busy machine)."""
    deadline = time.monotonic() + timeout
    while wanted not in "".join(seen):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"{wanted!r} never appeared in:\n{''.join(seen)}")
        ready, _, _ = select.select([fd], [], [], remaining)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # the process ended (EIO on Linux)
                chunk = b""
            if not chunk:
                raise AssertionError(f"{wanted!r} never appeared in:\n{''.join(seen)}")
            seen.append(chunk.decode(errors="replace"))
    return "".join(seen)


@pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pseudo-terminal")
def test_the_interactive_mode_asks_dataset_metrics_model_and_concurrency(workspace: Path) -> None:
    small = workspace / "datasets" / "small.jsonl"
    small.write_text('{"id": "one", "input": "What is 3 * 3?", "expected_tool": "calculator"}\n')
    controller, terminal = os.openpty()
    environment = {**os.environ, "TERM": "xterm", "COLUMNS": "120", "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "parley.cli", "eval", "--no-report"],
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        env=environment,
        cwd=workspace.parent,
    )
    os.close(terminal)
    seen: list[str] = []
    try:
        for prompt, answer in (
            ("Dataset", "small.jsonl"),
            ("Metrics", "relevancy,correctness"),
            ("Agent model", ""),
            ("Concurrency", "2"),
        ):
            _read_until(controller, prompt, seen)
            os.write(controller, f"{answer}\n".encode())
            seen.append("\n")  # the next prompt is searched after this point
            seen[:] = ["".join(seen).rsplit(prompt, 1)[1]]
        output = _read_until(controller, "estimated cost", seen)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(controller)

    assert "1 case(s) from small.jsonl" in output
    table = output.split("Scores")[1]
    assert "relevancy" in table
    assert "correctness" in table
    assert "concurrency 2" in output
    assert "\x1b[" in output  # coloured on a terminal
