"""``parley eval`` with Langfuse, against a local stand-in for the Langfuse host: each case traced
and its scores sent to its trace; ``parley eval traces`` judging recent production turns (every
page, skipping already-scored ones); the public-API adapters on their own; ``--since``."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jsonschema
import pytest
from tests.fakes.langfuse_server import FakeLangfuseServer
from tests.integration.test_evaluation_cli import SCHEMA, _eval, _only_report, _reports, workspace

from parley.adapters.inbound.evaluation.since import BadWindow, parse_window
from parley.adapters.outbound.langfuse import LangfuseScoreSink, LangfuseTraceSource
from parley.adapters.outbound.langfuse.public_api import CHAT_TURN_TRACE
from parley.adapters.outbound.langfuse.turn import TRACE_NAME
from parley.ports.scoring import Score, ScoreNotSent, TracesUnavailable

pytestmark = pytest.mark.integration
__all__ = ["workspace"]  # the fixture, shared with the dataset tests

NOW = datetime.now(UTC)
METRICS = "relevancy,helpfulness"


def _trace(number: int, *, hours_ago: float = 1.0, **fields: Any) -> dict[str, Any]:
    trace_id = f"{number:032x}"
    return {
        "id": trace_id,
        "name": "chat-turn",
        "timestamp": (NOW - timedelta(hours=hours_ago)).isoformat(),
        "input": f"What is {number} + {number}?",
        "output": f"{number} + {number} = {2 * number}.",
        "environment": "production",
        "latency": 0.5,
        "htmlPath": f"/project/fake-project/traces/{trace_id}",
        "scores": [],
        **fields,
    }


def _score(trace_id: str, name: str, *, hours_ago: float = 0.5) -> dict[str, Any]:
    return {
        "id": f"old-{trace_id}-{name}",
        "traceId": trace_id,
        "name": name,
        "value": 0.9,
        "timestamp": (NOW - timedelta(hours=hours_ago)).isoformat(),
    }


@pytest.fixture
def langfuse(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeLangfuseServer]:
    """The fake Langfuse (two items a page), its keys and host in the environment."""
    with FakeLangfuseServer(page_size=2) as server:
        monkeypatch.setenv("LANGFUSE_PUBLIC_KEY", "pk-lf-eval")
        monkeypatch.setenv("LANGFUSE_SECRET_KEY", "sk-lf-eval")
        monkeypatch.setenv("LANGFUSE_HOST", server.url)
        yield server


def _production(server: FakeLangfuseServer) -> None:
    """Seven turns over four pages: 1 fully scored, 2 half scored, 3 from parley eval itself,
    4 with no output (content capture off), 5 older than a day, 6 and 7 unscored."""
    server.traces = [
        _trace(1, scores=["s1", "s2"]),
        _trace(2, scores=["s3"]),
        _trace(3, environment="evaluation"),
        _trace(4, output=None),
        _trace(5, hours_ago=30),
        _trace(6),
        _trace(7, hours_ago=2),
    ]
    server.scores = [
        _score(f"{1:032x}", "relevancy"),
        _score(f"{1:032x}", "helpfulness"),
        _score(f"{2:032x}", "relevancy"),
        _score(f"{2:032x}", "toxicity"),  # a metric not asked about
    ]


def _get_paths(server: FakeLangfuseServer) -> list[str]:
    """The paths (without query) of the GET requests the fake received, in order."""
    return [urlsplit(request.path).path for request in server.requests if request.method == "GET"]


def _query(server: FakeLangfuseServer, path: str) -> list[dict[str, list[str]]]:
    """The query of each GET request to ``path``, in order."""
    return [
        parse_qs(urlsplit(request.path).query)
        for request in server.requests
        if request.method == "GET" and urlsplit(request.path).path == path
    ]


# --- parley eval (a dataset) --------------------------------------------------------------


def test_each_case_is_traced_and_its_scores_land_on_its_trace(
    workspace: Path, langfuse: FakeLangfuseServer
) -> None:
    result = _eval("--quick", "--limit", "3", "--metrics", METRICS)

    assert result.exit_code == 0, result.output
    report = _only_report(workspace)
    jsonschema.validate(report, SCHEMA)
    cases = report["cases"]
    trace_ids = [case["trace_id"] for case in cases]
    assert all(len(trace_id) == 32 for trace_id in trace_ids)
    assert len(set(trace_ids)) == 3
    assert [case["trace_url"] for case in cases] == [f"{langfuse.url}/trace/{t}" for t in trace_ids]
    # The turns' spans reached Langfuse under those trace ids (flushed when the run closed).
    assert set(trace_ids) <= {span.trace_id for span in langfuse.spans}
    sent = {(score["traceId"], score["name"]): score for score in langfuse.posted_scores}
    expected = {
        (case["trace_id"], name): verdict for case in cases for name, verdict in case["metrics"].items()
    }
    assert sent.keys() == expected.keys()
    assert len(expected) == 6
    for key, verdict in expected.items():
        assert sent[key]["value"] == verdict["score"]
        assert sent[key]["comment"] == verdict["reason"]
        assert sent[key]["dataType"] == "NUMERIC"
        assert sent[key]["id"] == f"{key[0]}-{key[1]}"
    auth = next(r for r in langfuse.requests if r.path == "/api/public/scores").headers["authorization"]
    assert auth == "Basic " + base64.b64encode(b"pk-lf-eval:sk-lf-eval").decode()
    assert report["langfuse"]["enabled"] is True
    assert (report["langfuse"]["scores_sent"], report["langfuse"]["scores_failed"]) == (6, 0)
    html = Path(_reports(workspace)[0]).with_suffix(".html").read_text()
    assert f'href="{cases[0]["trace_url"]}"' in html
    assert "6 score(s) sent" in result.output


def test_a_failing_scores_endpoint_is_reported_not_fatal(
    workspace: Path, langfuse: FakeLangfuseServer
) -> None:
    langfuse.scores_status = 500

    result = _eval("--quick", "--limit", "2", "--metrics", METRICS)

    assert result.exit_code == 0, result.output
    report = _only_report(workspace)
    assert report["metrics"]["relevancy"]["scored"] == 2  # the run's own results stand
    assert (report["langfuse"]["scores_sent"], report["langfuse"]["scores_failed"]) == (0, 4)
    assert "HTTP 500" in report["langfuse"]["errors"][0]
    assert "0 score(s) sent" in result.output
    assert "4 failed" in result.output
    assert "Traceback" not in result.output


def test_without_keys_nothing_is_sent_and_the_report_says_so(workspace: Path) -> None:
    result = _eval("--quick", "--limit", "1")

    assert result.exit_code == 0, result.output
    report = _only_report(workspace)
    assert report["langfuse"]["enabled"] is False
    assert "not configured" in report["langfuse"]["note"]
    assert report["cases"][0]["trace_id"] is None
    assert "Langfuse not configured" in result.output


# --- parley eval traces ---------------------------------------------------------------------


@pytest.mark.parametrize("current_api", [True, False], ids=["v4-endpoints", "older-langfuse"])
def test_recent_traces_are_judged_on_every_page_and_scored_ones_skipped(
    workspace: Path, langfuse: FakeLangfuseServer, current_api: bool
) -> None:
    _production(langfuse)
    langfuse.current_api = current_api

    result = _eval("traces", "--since", "24h", "--metrics", METRICS)

    assert result.exit_code == 0, result.output
    turns_path = "/api/public/v2/observations" if current_api else "/api/public/traces"
    assert _get_paths(langfuse).count(turns_path) == 3  # six traces in the window, two a page
    sent = sorted((s["traceId"], s["name"]) for s in langfuse.posted_scores)
    assert sent == [
        (f"{2:032x}", "helpfulness"),  # only the metric it lacked
        (f"{6:032x}", "helpfulness"),
        (f"{6:032x}", "relevancy"),
        (f"{7:032x}", "helpfulness"),
        (f"{7:032x}", "relevancy"),
    ]
    report = _only_report(workspace)
    jsonschema.validate(report, SCHEMA)
    assert [case["id"] for case in report["cases"]] == [f"{7:032x}", f"{2:032x}", f"{6:032x}"]  # oldest first
    by_trace = {case["trace_id"]: case for case in report["cases"]}
    for score in langfuse.posted_scores:
        assert score["value"] == by_trace[score["traceId"]]["metrics"][score["name"]]["score"]
    page = f"/trace/{6:032x}" if current_api else f"/project/fake-project/traces/{6:032x}"  # as each serves
    assert by_trace[f"{6:032x}"]["trace_url"] == f"{langfuse.url}{page}"
    assert report["langfuse"]["traces"]["fetched"] == 4  # 1, 2, 6, 7: not parley eval's, not empty
    assert report["langfuse"]["traces"]["already_scored"] == 1
    assert "4 turn(s) traced since" in result.output
    assert "1 already scored, 3 judged" in result.output

    again = _eval("traces", "--since", "24h", "--metrics", METRICS, "--no-report")

    assert again.exit_code == 0, again.output
    assert "4 already scored, 0 judged" in again.output
    assert len(langfuse.posted_scores) == 5  # nothing judged twice


def test_traces_limit_caps_the_turns_judged(workspace: Path, langfuse: FakeLangfuseServer) -> None:
    _production(langfuse)

    result = _eval("traces", "--since", "7d", "--limit", "1", "--metrics", METRICS, "--no-report")

    assert result.exit_code == 0, result.output
    assert {s["traceId"] for s in langfuse.posted_scores} == {f"{5:032x}"}  # the oldest, 30 h ago


def test_traces_needs_langfuse_and_a_valid_window(workspace: Path, langfuse: FakeLangfuseServer) -> None:
    bad = _eval("traces", "--since", "yesterday")

    assert bad.exit_code == 2
    assert "--since 'yesterday'" in bad.output
    assert "30m, 24h, 7d" in bad.output
    assert langfuse.requests == []


def test_traces_without_keys_says_so(workspace: Path) -> None:
    result = _eval("traces", "--since", "1h")

    assert result.exit_code == 2
    assert "Langfuse not configured" in result.output


# --- the adapters ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("current_api", "endpoints"),
    [
        (True, {"turns": "/v2/observations", "scores": "/v3/scores"}),
        (False, {"turns": "/traces", "scores": "/v2/scores"}),
    ],
    ids=["v4-endpoints", "older-langfuse"],
)
async def test_the_trace_source_reads_every_page_and_the_scores_carried(
    current_api: bool, endpoints: dict[str, str]
) -> None:
    with FakeLangfuseServer(page_size=2) as server:
        _production(server)
        server.current_api = current_api
        source = LangfuseTraceSource("pk", "sk", server.url, skip_environment="evaluation")
        turns = await source.recent_turns(NOW - timedelta(days=2), ["relevancy", "helpfulness"])
        await source.aclose()

    assert source.endpoints == endpoints
    assert [turn.trace_id for turn in turns] == [f"{n:032x}" for n in (5, 7, 1, 2, 6)]
    scored = {turn.trace_id: turn.scored for turn in turns}
    assert scored[f"{1:032x}"] == {"relevancy", "helpfulness"}
    assert scored[f"{2:032x}"] == {"relevancy"}
    assert scored[f"{6:032x}"] == frozenset()
    assert turns[0].input == "What is 5 + 5?"
    assert turns[0].latency == 0.5


async def test_the_trace_source_reads_root_observations_and_v3_scores_page_by_cursor() -> None:
    """Langfuse Cloud after 16 Nov 2026: only the v4 endpoints; every cursor page of both."""
    with FakeLangfuseServer(page_size=2) as server:
        _production(server)
        server.legacy_api = False
        server.scores.append({**_score(f"{6:032x}", "helpfulness"), "observationId": "a-generation"})
        source = LangfuseTraceSource("pk", "sk", server.url, skip_environment="evaluation")
        turns = await source.recent_turns(NOW - timedelta(hours=24), ["relevancy", "helpfulness"])
        await source.aclose()

    assert [turn.trace_id for turn in turns] == [f"{n:032x}" for n in (7, 1, 2, 6)]  # one per trace
    scored = {turn.trace_id: turn.scored for turn in turns}
    assert scored[f"{6:032x}"] == {"helpfulness"}  # a score on one of its observations
    assert scored[f"{1:032x}"] == {"relevancy", "helpfulness"}
    assert turns[0].input == "What is 7 + 7?"  # the SDK's JSON text unwrapped
    assert turns[0].output == "7 + 7 = 14."
    assert turns[0].latency == 0.5
    assert turns[0].url == f"{server.url}/trace/{7:032x}"
    assert "/api/public/traces" not in _get_paths(server)
    pages = _query(server, "/api/public/v2/observations")
    assert len(pages) == 3  # six chat-turn roots in the window, two a page
    first = pages[0]
    assert first["name"] == ["chat-turn"]
    assert first["isRootObservation"] == ["true"]
    assert {"io", "basic"} <= set(first["fields"][0].split(","))
    assert "cursor" not in first
    assert all("cursor" in page for page in pages[1:])
    scores = _query(server, "/api/public/v3/scores")
    assert len(scores) == 2  # four asked-about scores (not toxicity), two a page: one paged query
    assert set(scores[0]["name"][0].split(",")) == {"relevancy", "helpfulness"}


async def test_the_trace_source_falls_back_once_per_run_where_the_server_lacks_an_endpoint() -> None:
    """A self-hosted Langfuse v3 that has /v3/scores but answers 404 on /v2/observations."""
    with FakeLangfuseServer(page_size=2) as server:
        _production(server)
        server.get_status["/api/public/v2/observations"] = 404
        source = LangfuseTraceSource("pk", "sk", server.url, skip_environment="evaluation")
        first = await source.recent_turns(NOW - timedelta(hours=24), ["relevancy", "helpfulness"])
        again = await source.recent_turns(NOW - timedelta(hours=24), ["relevancy", "helpfulness"])
        await source.aclose()

    assert first == again
    assert [turn.trace_id for turn in first] == [f"{n:032x}" for n in (7, 1, 2, 6)]
    assert {turn.trace_id: turn.scored for turn in first}[f"{1:032x}"] == {"relevancy", "helpfulness"}
    assert source.endpoints == {"turns": "/traces", "scores": "/v3/scores"}
    paths = _get_paths(server)
    assert paths.count("/api/public/v2/observations") == 1  # asked once; the 404 decided the run
    assert paths.count("/api/public/traces") == 6  # two reads of three pages
    assert "/api/public/v2/scores" not in paths


@pytest.mark.parametrize("status", [401, 500, 503])
async def test_the_trace_source_does_not_fall_back_on_other_failures(status: int) -> None:
    with FakeLangfuseServer() as server:
        _production(server)
        server.get_status["/api/public/v2/observations"] = status
        source = LangfuseTraceSource("pk", "sk", server.url)
        with pytest.raises(TracesUnavailable, match=f"HTTP {status}"):
            await source.recent_turns(NOW - timedelta(hours=24), ["relevancy"])
        await source.aclose()

    assert "/api/public/traces" not in _get_paths(server)


async def test_the_trace_source_turns_a_failing_host_into_its_port_error() -> None:
    with FakeLangfuseServer() as server:
        url = server.url
    source = LangfuseTraceSource("pk", "sk", url, timeout=2.0)  # nothing listens there any more

    with pytest.raises(TracesUnavailable):
        await source.recent_turns(NOW, ["relevancy"])
    await source.aclose()


async def test_the_score_sink_upserts_one_score_per_trace_and_name() -> None:
    with FakeLangfuseServer() as server:
        sink = LangfuseScoreSink("pk", "sk", server.url)
        await sink.send(Score("t1", "relevancy", 0.25, "off topic"))
        await sink.send(Score("t1", "relevancy", 0.75, "better"))
        server.scores_status = 503
        with pytest.raises(ScoreNotSent, match="HTTP 503"):
            await sink.send(Score("t2", "relevancy", 1.0))
        await sink.aclose()

    assert [(s["id"], s["value"]) for s in server.scores] == [("t1-relevancy", 0.75)]
    body = json.loads(next(r for r in server.requests if r.method == "POST").body)
    assert body == {
        "id": "t1-relevancy",
        "traceId": "t1",
        "name": "relevancy",
        "value": 0.25,
        "dataType": "NUMERIC",
        "comment": "off topic",
    }


def test_the_source_asks_for_the_traces_the_tracer_names() -> None:
    assert CHAT_TURN_TRACE == TRACE_NAME


# --- --since --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "window"),
    [
        ("30m", timedelta(minutes=30)),
        ("24h", timedelta(hours=24)),
        ("7d", timedelta(days=7)),
        (" 2H ", timedelta(hours=2)),
    ],
)
def test_since_takes_minutes_hours_and_days(text: str, window: timedelta) -> None:
    assert parse_window(text) == window


@pytest.mark.parametrize("text", ["", "24", "h", "0h", "-1d", "1.5h", "2w", "24 h", "1d2h"])
def test_since_refuses_anything_else(text: str) -> None:
    with pytest.raises(BadWindow, match="30m, 24h, 7d"):
        parse_window(text)
