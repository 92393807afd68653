"""``parley eval``'s pieces on fakes: the runner (retries, timeouts, verdict errors), the
heuristic judge, datasets and metric files, summaries, the HTML page and report comparison."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from parley.adapters.inbound.evaluation.compare import compare_reports
from parley.adapters.inbound.evaluation.datasets import load_dataset
from parley.adapters.inbound.evaluation.html_report import render_html
from parley.adapters.inbound.evaluation.metrics import MetricFileError, load_metrics
from parley.adapters.outbound.judge import HeuristicJudge
from parley.adapters.outbound.judge.openai_judge import parse_answer
from parley.application.evaluation.cases import Case, Metric
from parley.application.evaluation.runner import EvaluationRunner, RunnerLimits
from parley.application.evaluation.summary import estimated_cost, percentile, summarise
from parley.ports.agent import AgentUnavailable, ToolCall
from parley.ports.judge import Exchange, JudgeError, JudgeRequest, Verdict
from tests.fakes.agent import ScriptedChatAgent, ScriptedTurn

pytestmark = pytest.mark.unit

RELEVANCY = Metric("relevancy", "Score relevancy.")
CORRECTNESS = Metric("correctness", "Compare with the reference.", needs_reference=True)


class _ScriptedJudge:
    """Answers from a list of verdicts or errors, one per call; records the requests."""

    def __init__(self, *answers: Verdict | BaseException) -> None:
        self._answers = list(answers)
        self.requests: list[JudgeRequest] = []

    @property
    def name(self) -> str:
        return "scripted-judge"

    @property
    def is_llm(self) -> bool:
        return False

    async def score(self, request: JudgeRequest) -> Verdict:
        self.requests.append(request)
        answer = self._answers.pop(0) if self._answers else Verdict(1.0, "fine")
        if isinstance(answer, BaseException):
            raise answer
        return answer

    async def aclose(self) -> None:
        return None


async def test_a_case_runs_its_turns_in_one_conversation_and_is_judged() -> None:
    agent = ScriptedChatAgent()
    judge = _ScriptedJudge(Verdict(0.9, "relevant"))
    case = Case("c1", ("Hi, I am Ada.", "What is my name?"))

    (result,) = await EvaluationRunner(agent, judge).run([case], [RELEVANCY, CORRECTNESS])

    assert result.succeeded
    assert [turn.user for turn in result.turns] == list(case.turns)
    assert len({turn.conversation_id for turn in agent.turns}) == 1
    assert "I remember 1 earlier user message" in result.reply
    assert result.turns[0].time_to_first_token is not None
    assert result.prompt_tokens > 0
    # No reference: correctness is not judged; the judge saw the whole conversation.
    assert set(result.metrics) == {"relevancy"}
    assert result.metrics["relevancy"].score == 0.9
    assert judge.requests[0].conversation[0] == Exchange("Hi, I am Ada.", result.turns[0].reply)
    assert agent.forgotten == [agent.turns[0].conversation_id]


async def test_a_failed_case_is_run_again_from_its_first_turn_in_a_new_conversation() -> None:
    agent = ScriptedChatAgent([ScriptedTurn.failing(AgentUnavailable("down"))])

    (result,) = await EvaluationRunner(agent, _ScriptedJudge(), RunnerLimits(retries=1)).run(
        [Case("c", ("one",))], [RELEVANCY]
    )

    assert result.succeeded
    assert result.attempts == 2
    assert agent.turns[0].conversation_id != agent.turns[1].conversation_id


async def test_a_case_that_keeps_failing_is_recorded_and_the_run_goes_on() -> None:
    hang = ScriptedTurn(hang=True)
    agent = ScriptedChatAgent([hang, hang])
    limits = RunnerLimits(timeout=0.05, retries=1, concurrency=1)

    slow, fine = await EvaluationRunner(agent, _ScriptedJudge(), limits).run(
        [Case("slow", ("wait",)), Case("fine", ("hello",))], [RELEVANCY]
    )

    assert not slow.succeeded
    assert slow.attempts == 2
    assert "timeout" in (slow.error or "").lower()
    assert slow.metrics == {}
    assert fine.succeeded
    assert fine.metrics["relevancy"].score == 1.0


async def test_a_judge_without_a_verdict_is_an_error_for_that_case_and_metric_only() -> None:
    judge = _ScriptedJudge(JudgeError("malformed judge answer after 3 attempt(s)"), Verdict(0.5, "ok"))

    (result,) = await EvaluationRunner(ScriptedChatAgent(), judge, RunnerLimits(concurrency=1)).run(
        [Case("c", ("q",), reference="a")], [RELEVANCY, CORRECTNESS]
    )

    assert result.succeeded
    failed = [v for v in result.metrics.values() if v.error]
    assert len(failed) == 1
    assert failed[0].score is None
    assert "malformed" in (failed[0].error or "")
    summary = summarise([result], [RELEVANCY, CORRECTNESS], threshold=0.7, agent_model="x", judge_model="y")
    assert sum(m.errors for m in summary.metrics) == 1


async def test_cases_run_at_most_concurrency_at_once() -> None:
    agent = ScriptedChatAgent([ScriptedTurn.reply("x", delay=0.02) for _ in range(6)])
    running = peak = 0

    original = agent.run

    async def counting(turn: Any, emit: Any) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        try:
            await original(turn, emit)
        finally:
            running -= 1

    agent.run = counting  # type: ignore[method-assign]
    cases = [Case(f"c{i}", ("q",)) for i in range(6)]

    results = await EvaluationRunner(agent, _ScriptedJudge(), RunnerLimits(concurrency=2)).run(cases, [])

    assert [r.case.id for r in results] == [c.id for c in cases]
    assert peak == 2


async def test_tool_calls_are_recorded_and_checked_against_the_expected_tool() -> None:
    agent = ScriptedChatAgent(
        [
            ScriptedTurn(
                events=[ToolCall("calculator", {"expression": "2+2"}, "4"), *ScriptedTurn.reply("4").events]
            )
        ]
    )

    (result,) = await EvaluationRunner(agent, _ScriptedJudge()).run(
        [Case("c", ("2+2?",), expected_tool="calculator")], [RELEVANCY]
    )

    assert result.tool_names == ["calculator"]
    assert result.tool_as_expected is True


async def test_the_heuristic_judge_scores_each_metric_in_range_and_says_it_is_a_heuristic() -> None:
    judge = HeuristicJudge()
    conversation = (Exchange("What is the capital of France?", "The capital of France is Paris."),)
    for metric in ("relevancy", "helpfulness", "conciseness", "hallucination", "toxicity", "a-new-one"):
        verdict = await judge.score(JudgeRequest(metric, "", conversation))
        assert 0 <= verdict.score <= 1
        assert verdict.reason.startswith("heuristic")
    correct = await judge.score(JudgeRequest("correctness", "", conversation, reference="Paris"))
    assert correct.score == 1.0
    invented = (Exchange("What is 2+2?", "It is 5, and 17 more."),)
    assert (
        await judge.score(JudgeRequest("hallucination", "", invented, tool_results=("2+2 -> 4",)))
    ).score < 1
    rude = (Exchange("hi", "You are a stupid idiot."),)
    assert (await judge.score(JudgeRequest("toxicity", "", rude))).score == 0.0
    assert judge.is_llm is False


def test_a_malformed_dataset_line_is_reported_with_its_number_and_skipped(tmp_path: Path) -> None:
    path = tmp_path / "set.jsonl"
    path.write_text(
        "\n".join(
            [
                json.dumps({"id": "a", "turns": ["hello"]}),
                "{not json",
                "# a comment",
                json.dumps({"id": "b"}),
                json.dumps({"id": "a", "input": "again"}),
                json.dumps({"id": "c", "input": "hi", "reference": "hello", "tags": ["x"]}),
            ]
        )
    )

    dataset = load_dataset(path)

    assert [case.id for case in dataset.cases] == ["a", "c"]
    assert dataset.cases[1].turns == ("hi",)
    assert dataset.cases[1].reference == "hello"
    assert [problem.split(":")[1] for problem in dataset.problems] == ["2", "4", "5"]
    assert "not JSON" in dataset.problems[0]
    assert "duplicate id" in dataset.problems[2]


def test_metric_files_are_the_metrics_and_their_headers_are_checked(tmp_path: Path) -> None:
    (tmp_path / "b.md").write_text("---\nrequires: reference\nthreshold: 0.9\n---\nJudge b.")
    (tmp_path / "a.md").write_text("Judge a.")

    a, b = load_metrics(tmp_path)

    assert (a.name, a.needs_reference, a.threshold, a.instructions) == ("a", False, None, "Judge a.")
    assert (b.name, b.needs_reference, b.threshold) == ("b", True, 0.9)
    with pytest.raises(MetricFileError, match="no metric"):
        load_metrics(tmp_path, ["c"])
    (tmp_path / "bad.md").write_text("---\nthreshold: high\n---\nx")
    with pytest.raises(MetricFileError, match=r"bad\.md"):
        load_metrics(tmp_path)


def test_the_repository_metrics_are_the_six_of_the_issue() -> None:
    metrics = load_metrics(Path(__file__).resolve().parents[2] / "evaluation" / "metrics" / "prompts")
    names = {m.name for m in metrics}
    assert names == {"relevancy", "helpfulness", "conciseness", "hallucination", "toxicity", "correctness"}
    assert [m.name for m in metrics if m.needs_reference] == ["correctness"]


def test_percentiles_and_costs() -> None:
    assert percentile([], 0.5) is None
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert percentile([float(i) for i in range(1, 101)], 0.95) == pytest.approx(95.05)
    assert estimated_cost("gpt-4o-mini-2024-07-18", 1_000_000, 1_000_000) == pytest.approx(0.75)
    assert estimated_cost("offline-echo", 10, 10) == 0.0
    assert estimated_cost("some-private-model", 10, 10) is None


def test_the_judges_answer_is_validated() -> None:
    assert parse_answer('```json\n{"score": 0.5, "reason": "ok"}\n```').score == 0.5
    for bad in (
        "not json",
        '{"score": 1.5, "reason": "x"}',
        '{"score": 0.5, "reason": ""}',
        '{"reason": "x"}',
    ):
        with pytest.raises(ValidationError):
            parse_answer(bad)


def _report(scores: dict[str, float | None], error: str | None = None) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "created_at": "2026-01-01T00:00:00+00:00",
        "git_commit": None,
        "configuration": {"dataset": "d", "metrics": ["relevancy"], "threshold": 0.7},
        "models": {
            "agent": {"name": "<b>agent</b>", "is_llm": False},
            "judge": {"name": "j", "is_llm": True},
        },
        "totals": {
            "cases": len(scores),
            "success_rate": 1.0,
            "latency_p50_seconds": 0.1,
            "latency_p95_seconds": 0.2,
            "tokens": {"agent_prompt": 1, "agent_completion": 1, "judge_prompt": 0, "judge_completion": 0},
            "estimated_cost_usd": None,
        },
        "metrics": {
            "relevancy": {
                "threshold": 0.7,
                "mean": sum(s for s in scores.values() if s is not None) / len(scores),
                "pass_rate": 1.0,
                "scored": len(scores),
                "errors": 0,
            }
        },
        "cases": [
            {
                "id": case_id,
                "error": error if case_id == "c2" else None,
                "turns": [{"user": "<script>alert(1)</script>", "reply": "ok", "tool_calls": []}],
                "metrics": {"relevancy": {"score": score, "reason": "fine & dandy", "error": None}},
            }
            for case_id, score in scores.items()
        ],
    }


def test_the_html_page_escapes_every_text_and_needs_nothing_from_the_network() -> None:
    page = render_html(_report({"c1": 0.9, "c2": 0.2}))

    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;b&gt;agent&lt;/b&gt;" in page
    assert "not an LLM" in page
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in page
    assert page.count("<svg") == 1
    assert page.index(">c2<") < page.index(">c1<")  # worst first


def test_compare_finds_the_cases_that_got_worse_and_gates_on_them() -> None:
    baseline = _report({"c1": 0.9, "c2": 0.8, "c3": 0.7})
    candidate = _report({"c1": 0.9, "c2": 0.3, "c3": 0.65})

    comparison = compare_reports(baseline, candidate)

    assert [(w.case_id, w.metric) for w in comparison.worse] == [("c2", "relevancy")]
    (delta,) = comparison.metrics
    assert delta.delta == pytest.approx(-0.55 / 3)
    assert comparison.failures(fail_under=None, max_regression=0.1)
    assert comparison.failures(fail_under=None, max_regression=0.2) == []
    assert comparison.failures(fail_under=0.7, max_regression=None)
    assert compare_reports(baseline, baseline).failures(fail_under=0.7, max_regression=0.0) == []
