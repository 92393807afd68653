"""The dashboards and alert rules under ``observability/`` name only metrics and labels the app
really exposes: a live app is driven until every family has series, scraped, and every query
checked against the scrape (:mod:`tests.promql_references`)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from parley.ports.agent import AgentUnavailable, ModelRetry, TokenDelta, ToolCall, Usage
from tests.e2e.conftest import PASSWORD, AppFactory, signed_up
from tests.fakes.agent import SCRIPTED_MODEL, ScriptedChatAgent, ScriptedTurn
from tests.promql_references import (
    Exposition,
    dashboard_queries,
    label_values_problems,
    problems,
    rule_queries,
    variable_queries,
)

pytestmark = pytest.mark.e2e

OBSERVABILITY = Path(__file__).resolve().parents[2] / "observability"
DASHBOARDS = sorted((OBSERVABILITY / "grafana" / "dashboards").glob("*.json"))
RULE_FILES = [OBSERVABILITY / "prometheus" / "alerts.yml"]
SCRAPE_JOB = "parley"  # prometheus.yml's job for the API
LOGIN_LIMIT = 3  # logins per account: the refused one is counted as an auth outcome too


def _queries() -> Iterator[tuple[str, str]]:
    for path in DASHBOARDS:
        yield from dashboard_queries(json.loads(path.read_text()))
    for path in RULE_FILES:
        yield from rule_queries(yaml.safe_load(path.read_text()))


def _variables() -> Iterator[tuple[str, str]]:
    for path in DASHBOARDS:
        yield from variable_queries(json.loads(path.read_text()))


def _agent() -> ScriptedChatAgent:
    """A turn with a tool call and tokens, then one that retries and fails; then echoes."""
    return ScriptedChatAgent(
        [
            ScriptedTurn(
                events=[
                    ToolCall("calculator", {"expression": "17 * 23"}, "391"),
                    TokenDelta("17 * 23 = "),
                    TokenDelta("391"),
                    Usage(SCRIPTED_MODEL, prompt_tokens=12, completion_tokens=4),
                ]
            ),
            ScriptedTurn.failing(
                AgentUnavailable("down", model=SCRIPTED_MODEL),
                events=[ModelRetry(attempt=1, reason="rate_limited", model=SCRIPTED_MODEL)],
            ),
        ]
    )


async def _every_family(client: httpx.AsyncClient) -> None:
    """Traffic that gives every metric family series: logins (one refused by the account's rate
    limit, one with a wrong password), a chat turn with a tool, a failing one, a stream, 404s."""
    email = f"observe-{uuid.uuid4().hex[:8]}@example.com"
    headers = await signed_up(client, email)  # register + login 1
    wrong = await client.post("/api/v1/auth/login", json={"email": email, "password": "Wr0ng!Passw0rd"})
    assert wrong.status_code == 401
    statuses = [
        (await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})).status_code
        for _ in range(LOGIN_LIMIT - 1)
    ]
    assert statuses[-1] == 429, statuses
    session = (await client.post("/api/v1/chat/sessions", json={}, headers=headers)).json()["id"]
    messages = f"/api/v1/chat/sessions/{session}/messages"
    assert (await client.post(messages, json={"content": "17 * 23?"}, headers=headers)).status_code == 200
    assert (await client.post(messages, json={"content": "again"}, headers=headers)).status_code == 502
    streamed = await client.post(f"{messages}/stream", json={"content": "stream it"}, headers=headers)
    assert streamed.status_code == 200
    assert "event: done" in streamed.text
    assert (await client.get(f"/api/v1/chat/sessions/{uuid.uuid4()}", headers=headers)).status_code == 404
    assert (await client.get("/no/such/route")).status_code == 404
    assert (await client.get("/health")).status_code == 200


async def _scraped_after_traffic(start_app: AppFactory) -> Exposition:
    _, client = await start_app(
        overrides={"agent": _agent()},
        limits={"enabled": True, "login_account": f"{LOGIN_LIMIT} per minute"},
    )
    await _every_family(client)
    scrape = await client.get("/metrics")
    assert scrape.status_code == 200
    return Exposition.scraped(scrape.text, job=SCRAPE_JOB)


async def test_every_dashboard_and_alert_query_names_exposed_metrics_and_labels(
    start_app: AppFactory,
) -> None:
    exposition = await _scraped_after_traffic(start_app)
    queries, variables = list(_queries()), list(_variables())

    found = [f"{where}: {problem}" for where, query in queries for problem in problems(query, exposition)]
    found += [f"{where}: {p}" for where, query in variables for p in label_values_problems(query, exposition)]

    assert len(DASHBOARDS) == 6
    assert len(queries) > 60
    assert found == [], "\n".join(found)


async def test_the_check_catches_a_renamed_metric_a_lost_label_and_an_unseen_value(
    start_app: AppFactory,
) -> None:
    exposition = await _scraped_after_traffic(start_app)
    broken: dict[str, str] = {
        "sum(rate(parley_http_request_total[5m]))": "metric 'parley_http_request_total' is not exposed",
        "histogram_quantile(0.9, sum by (le) (rate(parley_llm_call_duration_seconds[5m])))": "not exposed",
        "sum by (path) (rate(parley_http_requests_total[5m]))": "label 'path' is not there",
        'parley_llm_tokens_total{type="prompt"}': "label 'type' is not there",
        'parley_llm_tokens_total{kind="prompts"}': "kind='prompts' never seen",
        "sum by (model) (sum by (kind) (rate(parley_llm_tokens_total[5m])))": "label 'model' is not there",
        "histogram_quantile(0.9, sum by (model) (rate(parley_llm_call_duration_seconds_bucket[5m])))": "'le'",
        "parley_db_pool_size / on (route) parley_db_pool_checked_out": "label 'route' is not there",
        "label_replace(parley_db_up, 'x', '$1', 'host', '(.*)')": "label 'host' is not there",
    }

    for query, expected in broken.items():
        assert any(expected in problem for problem in problems(query, exposition)), query
    assert label_values_problems("label_values(parley_build_info, host)", exposition)
    assert problems('sum by (route) (rate(parley_http_requests_total{status="418"}[5m]))', exposition) == []
