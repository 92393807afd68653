"""The files under ``observability/`` hold together: Grafana dashboards are well-formed and all
read the provisioned data source, every alert carries what on-call needs and has a promtool test
that fires it, and promtool itself accepts the config, the rules and the rule tests.

(Whether the queries name metrics and labels the app exposes is
``tests/e2e/test_observability_queries.py``'s business: it needs a running app.)
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.promql_references import all_panels, grafana_to_promql

pytestmark = pytest.mark.unit

OBSERVABILITY = Path(__file__).resolve().parents[2] / "observability"
PROMETHEUS = OBSERVABILITY / "prometheus"
GRAFANA = OBSERVABILITY / "grafana"
DASHBOARD_FILES = sorted((GRAFANA / "dashboards").glob("*.json"))
PANEL_DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
SEVERITIES = {"critical", "warning"}
GRID_COLUMNS = 24
OLDEST_SCHEMA = 36  # Grafana 9.x; 39 is Grafana 10.4/11


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def _dashboards() -> list[dict[str, Any]]:
    return [json.loads(path.read_text()) for path in DASHBOARD_FILES]


def _provisioned_datasource() -> dict[str, Any]:
    (source,) = _yaml(GRAFANA / "provisioning" / "datasources" / "prometheus.yml")["datasources"]
    return dict(source)


def _alerts() -> list[dict[str, Any]]:
    groups = _yaml(PROMETHEUS / "alerts.yml")["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def test_the_six_dashboards_have_unique_uids_and_titles_and_a_current_schema() -> None:
    dashboards = _dashboards()

    assert {d["uid"] for d in dashboards} == {
        "parley-api",
        "parley-rate-limits",
        "parley-database",
        "parley-llm",
        "parley-chat",
        "parley-system",
    }
    assert len({d["title"] for d in dashboards}) == len(dashboards)
    assert all(d["schemaVersion"] >= OLDEST_SCHEMA for d in dashboards)
    assert all("id" not in d or d["id"] is None for d in dashboards)  # ids are Grafana's to give


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=lambda path: path.stem)
def test_every_panel_has_a_title_a_unit_the_datasource_variable_and_targets(path: Path) -> None:
    dashboard = json.loads(path.read_text())
    panels = list(all_panels(dashboard["panels"]))
    graphs = [panel for panel in panels if panel["type"] != "row"]

    assert [id for id, n in Counter(panel["id"] for panel in panels).items() if n > 1] == []
    for panel in graphs:
        where = f"{path.name}: panel {panel.get('id')} {panel.get('title')!r}"
        assert panel.get("title"), where
        assert panel.get("datasource") == PANEL_DATASOURCE, where
        assert panel["fieldConfig"]["defaults"].get("unit"), where
        targets = panel.get("targets", [])
        assert targets, where
        assert len({target["refId"] for target in targets}) == len(targets), where
        for target in targets:
            assert target.get("expr"), where
            assert target.get("datasource") == PANEL_DATASOURCE, where


@pytest.mark.parametrize("path", DASHBOARD_FILES, ids=lambda path: path.stem)
def test_panels_fit_the_grid_without_overlapping(path: Path) -> None:
    cells: dict[tuple[int, int], str] = {}
    for panel in all_panels(json.loads(path.read_text())["panels"]):
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= GRID_COLUMNS, panel["title"]  # noqa: PT018
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{panel['title']!r} overlaps {cells[(x, y)]!r}"
                cells[(x, y)] = panel["title"]


def test_dashboards_default_to_the_provisioned_prometheus() -> None:
    source = _provisioned_datasource()

    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"
    for dashboard in _dashboards():
        variables = {v["name"]: v for v in dashboard["templating"]["list"]}
        chooser = variables["datasource"]
        assert (chooser["type"], chooser["query"]) == ("datasource", "prometheus"), dashboard["uid"]
        assert chooser["current"]["value"] == source["uid"], dashboard["uid"]
        others = [v for v in variables.values() if v["type"] == "query"]
        assert all(v["datasource"] == PANEL_DATASOURCE for v in others), dashboard["uid"]


def test_the_dashboard_provider_reads_the_folder_the_readme_and_compose_mount() -> None:
    (provider,) = _yaml(GRAFANA / "provisioning" / "dashboards" / "parley.yml")["providers"]
    mount = provider["options"]["path"]
    grafana_volumes = _yaml(OBSERVABILITY.parent / "compose.yaml")["services"]["grafana"]["volumes"]

    assert mount == "/etc/grafana/dashboards"
    assert mount in (OBSERVABILITY / "README.md").read_text()
    assert f"./observability/grafana/dashboards:{mount}:ro" in grafana_volumes


def test_every_alert_says_how_long_how_bad_what_and_what_to_do() -> None:
    alerts = _alerts()

    assert len(alerts) >= 9
    for rule in alerts:
        assert rule.get("for"), rule["alert"]
        assert rule["labels"]["severity"] in SEVERITIES, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        assert len(rule["annotations"]["description"]) > 100, rule["alert"]  # a runbook, not a label


def test_every_alert_has_a_promtool_case_that_fires_it_and_some_cases_stay_quiet() -> None:
    cases = [
        case
        for test in _yaml(PROMETHEUS / "alerts.test.yml")["tests"]
        for case in test.get("alert_rule_test", [])
    ]
    fired = {case["alertname"] for case in cases if case["exp_alerts"]}

    assert {rule["alert"] for rule in _alerts()} <= fired
    assert any(not case["exp_alerts"] for case in cases)


PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool is not installed (Debian: apt-get install prometheus; .ci/run installs it)",
)


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, *args], cwd=PROMETHEUS, capture_output=True, text=True, timeout=120, check=False
    )


@needs_promtool
@pytest.mark.parametrize(
    "args",
    [
        ("check", "config", "prometheus.yml"),
        ("check", "rules", "alerts.yml"),
        ("test", "rules", "alerts.test.yml"),
    ],
    ids=["check-config", "check-rules", "test-rules"],
)
def test_promtool_accepts(args: tuple[str, ...]) -> None:
    result = _promtool(*args)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_grafana_macros_and_variables_become_promql_but_group_references_stay() -> None:
    query = 'label_replace(rate(m{i=~"$instance", m=~"${model}"}[$__rate_interval]), "e", "$1", "r", "(.*)")'

    assert grafana_to_promql(query) == (
        'label_replace(rate(m{i=~".*", m=~".*"}[5m]), "e", "$1", "r", "(.*)")'
    )
