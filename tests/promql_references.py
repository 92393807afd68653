"""Which metrics and labels a PromQL query needs, checked against what ``/metrics`` exposes.

The dashboards and alert rules under ``observability/`` name metrics and labels as strings;
nothing fails when the app renames one, the panel just goes blank. This module parses each
query (``promql_parser``, Prometheus's own grammar) and infers, bottom up, which labels each
sub-expression carries, so that it can report:

- a selector naming a metric that no scraped sample has (histograms are scraped as their
  ``_bucket``/``_sum``/``_count`` samples, so the bare family name is an error, as in PromQL);
- a matcher, ``by``/``without``, ``on``/``ignoring`` or ``group_left``/``group_right`` label
  that the expression below it does not carry (a label dropped by an inner aggregation
  counts as missing), and ``histogram_quantile`` over something without ``le``;
- an ``=``/``!=`` matcher whose value was never seen, for labels whose values the scrape
  shows (not ``instance``, nor HTTP ``status``: open sets the traffic cannot exhaust).

Scraping adds ``job`` and ``instance`` to every sample, and Prometheus makes ``up`` and
``scrape_*`` series per target: both are known here. Recording rules are not modelled (a
query naming a recorded series is reported as unknown); Parley's rules have none.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import promql_parser as promql
from prometheus_client.parser import text_string_to_metric_families

TARGET_LABELS = frozenset({"job", "instance"})
PER_TARGET_SERIES = ("up", "scrape_duration_seconds", "scrape_samples_scraped", "scrape_series_added")
# Label values that are open sets: any value may appear in production.
OPEN_VALUES = frozenset({"instance"})
OPEN_VALUES_OF = {"status": ("parley_http_requests_total", "parley_http_request_duration_seconds")}
# Grafana's macros and variables, replaced before parsing (variables sit in regex matchers).
GRAFANA_DURATIONS = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}
# Not $1: label_replace's group references (Grafana leaves names no variable has alone).
GRAFANA_VARIABLE = re.compile(r"\$\{[A-Za-z_]\w*(?::\w+)?\}|\$[A-Za-z_]\w*|\[\[[A-Za-z_]\w*\]\]")
LABEL_VALUES = re.compile(r"^\s*label_values\((?:(?P<selector>.+),\s*)?(?P<label>\w+)\)\s*$")
# Functions whose result drops a label their argument had, or that take no series.
LABEL_DROPPING = {"histogram_quantile": frozenset({"le"})}
NO_SERIES = frozenset({"time", "vector", "scalar", "pi"})
# What an unknown metric carries: any label, so that it is reported once, not at every use.
ANY_LABEL = frozenset({"*"})
KEEPS_LABELS = frozenset({"topk", "bottomk", "limitk", "limit_ratio"})  # they select series, whole


@dataclass(frozen=True, slots=True)
class Exposition:
    """What a scrape shows, as Prometheus stores it: sample name -> label names (target labels
    included) and (sample name, label) -> values seen."""

    labels: Mapping[str, frozenset[str]]
    values: Mapping[tuple[str, str], frozenset[str]]

    @classmethod
    def scraped(cls, text: str, *, job: str) -> Exposition:
        """The exposition ``text`` as stored after a scrape by job ``job``."""
        labels: dict[str, set[str]] = {name: set(TARGET_LABELS) for name in PER_TARGET_SERIES}
        values: dict[tuple[str, str], set[str]] = {(name, "job"): {job} for name in PER_TARGET_SERIES}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                labels.setdefault(sample.name, set(TARGET_LABELS)).update(sample.labels)
                values.setdefault((sample.name, "job"), set()).add(job)
                for label, value in sample.labels.items():
                    values.setdefault((sample.name, label), set()).add(value)
        return cls(
            labels={name: frozenset(names) for name, names in labels.items()},
            values={key: frozenset(seen) for key, seen in values.items() if _closed(*key)},
        )


def _closed(sample: str, label: str) -> bool:
    open_for = OPEN_VALUES_OF.get(label, ())
    return label not in OPEN_VALUES and not any(sample.startswith(family) for family in open_for)


def grafana_to_promql(query: str) -> str:
    """A Grafana query as Prometheus would receive it (macros as durations, variables as ``.*``)."""
    for macro, duration in GRAFANA_DURATIONS.items():
        query = query.replace(macro, duration)
    return GRAFANA_VARIABLE.sub(".*", query)


def problems(query: str, exposition: Exposition) -> list[str]:
    """Everything ``query`` names that ``exposition`` does not have (empty when all is there)."""
    try:
        tree = promql.parse(grafana_to_promql(query))
    except ValueError as error:
        return [f"does not parse: {error}"]
    checker = _Checker(exposition)
    checker.labels_of(tree)
    return checker.found


def label_values_problems(query: str, exposition: Exposition) -> list[str]:
    """The same for a Grafana variable query ``label_values([selector,] label)``."""
    match = LABEL_VALUES.match(grafana_to_promql(query))
    if match is None:
        return [f"not a label_values() query: {query!r}"]
    label, selector = match["label"], match["selector"]
    if selector is None:
        everywhere = set().union(*exposition.labels.values())
        return [] if label in everywhere else [f"no metric has label {label!r}"]
    found = problems(selector, exposition)
    checker = _Checker(exposition)
    return found + checker.missing(checker.labels_of(promql.parse(selector)), [label], "label_values")


@dataclass(slots=True)
class _Checker:
    exposition: Exposition
    found: list[str] = field(default_factory=list)

    def missing(self, have: frozenset[str], wanted: Iterable[str], where: str) -> list[str]:
        if have >= ANY_LABEL:
            return []
        lost = [
            f"{where}: label {label!r} is not there (have {sorted(have)})"
            for label in wanted
            if label not in have
        ]
        self.found.extend(lost)
        return lost

    def labels_of(self, node: Any) -> frozenset[str]:
        """The labels ``node``'s result series carry; problems are collected on the way."""
        if isinstance(node, promql.VectorSelector):
            return self._selector(node)
        if isinstance(node, promql.MatrixSelector):
            return self._selector(node.vector_selector)
        if isinstance(node, promql.ParenExpr | promql.UnaryExpr | promql.SubqueryExpr):
            return self.labels_of(node.expr)
        if isinstance(node, promql.AggregateExpr):
            return self._aggregate(node)
        if isinstance(node, promql.BinaryExpr):
            return self._binary(node)
        if isinstance(node, promql.Call):
            return self._call(node)
        return frozenset()  # numbers and strings

    def _selector(self, selector: Any) -> frozenset[str]:
        matchers = list(selector.matchers.matchers)
        name: str = selector.name or next((m.value for m in matchers if m.name == "__name__"), "")
        have = self.exposition.labels.get(name)
        if have is None:
            self.found.append(f"metric {name!r} is not exposed")
            return ANY_LABEL
        for matcher in matchers:
            if matcher.name == "__name__":
                continue
            if not self.missing(have, [matcher.name], name):
                self._value(name, matcher)
        return have

    def _value(self, name: str, matcher: Any) -> None:
        seen = self.exposition.values.get((name, matcher.name))
        exact = str(matcher.op) in ("MatchOp.Equal", "MatchOp.NotEqual")
        if seen is not None and exact and matcher.value not in seen:
            self.found.append(f"{name}: {matcher.name}={matcher.value!r} never seen (seen {sorted(seen)})")

    def _aggregate(self, node: Any) -> frozenset[str]:
        have = self.labels_of(node.expr)
        if node.param is not None:
            self.labels_of(node.param)
        modifier = node.modifier
        if str(node.op) in KEEPS_LABELS and modifier is None:
            return have
        if modifier is None:
            return frozenset()
        grouping = list(modifier.labels)
        self.missing(have, grouping, f"{node.op} {str(modifier.type).rsplit('.', 1)[-1].lower()}")
        if str(modifier.type).endswith("Without"):
            return have - frozenset(grouping)
        return frozenset(grouping) & have | (have & ANY_LABEL)

    def _binary(self, node: Any) -> frozenset[str]:
        left, right = self.labels_of(node.lhs), self.labels_of(node.rhs)
        if not (_is_vector(node.lhs) and _is_vector(node.rhs)):
            return left | right  # a vector and a number: the vector's labels
        modifier = node.modifier
        matching = modifier.matching if modifier is not None else None
        if matching is not None and str(matching.type).endswith("Include"):
            for side in (left, right):
                self.missing(side, matching.labels, f"on ({', '.join(matching.labels)})")
        elif matching is not None:
            self.missing(left | right, matching.labels, f"ignoring ({', '.join(matching.labels)})")
        card = str(modifier.card) if modifier is not None else ""
        if card.endswith("ManyToOne"):  # group_left: the extra labels come from the right
            self.missing(right, modifier.group_labels, "group_left")
            return left | frozenset(modifier.group_labels)
        if card.endswith("OneToMany"):
            self.missing(left, modifier.group_labels, "group_right")
            return right | frozenset(modifier.group_labels)
        return left | right if str(node.op).strip() == "or" else left

    def _call(self, node: Any) -> frozenset[str]:
        name = node.func.name
        args = list(node.args)
        labels = [self.labels_of(arg) for arg in args]
        if name in NO_SERIES or name == "absent" or name == "absent_over_time":
            return frozenset()
        if name == "label_replace":
            destination, source = args[1].val, args[3].val
            self.missing(labels[0], [source], "label_replace source")
            return labels[0] | {destination}
        if name == "label_join":
            sources = [arg.val for arg in args[3:]]
            self.missing(labels[0], sources, "label_join source")
            return labels[0] | {args[1].val}
        carried = next(
            (found for arg, found in zip(args, labels, strict=True) if _is_vector(arg)), frozenset()
        )
        dropped = LABEL_DROPPING.get(name, frozenset())
        self.missing(carried, dropped, name)
        return carried - dropped


def _is_vector(node: Any) -> bool:
    """Whether ``node`` evaluates to series (not a number or a string)."""
    if isinstance(node, promql.NumberLiteral | promql.StringLiteral):
        return False
    if isinstance(node, promql.ParenExpr | promql.UnaryExpr):
        return _is_vector(node.expr)
    if isinstance(node, promql.Call):
        return node.func.name not in ("time", "scalar", "pi")
    if isinstance(node, promql.BinaryExpr):
        return _is_vector(node.lhs) or _is_vector(node.rhs)
    return True


def dashboard_queries(dashboard: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, expr) of every panel target, rows' nested panels included."""
    for panel in all_panels(dashboard.get("panels", [])):
        for target in panel.get("targets", []):
            if target.get("expr"):
                yield f"{dashboard['uid']}: {panel.get('title')!r} {target.get('refId')}", target["expr"]


def variable_queries(dashboard: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, query) of every query variable of the dashboard."""
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            query = variable["query"]
            yield (
                f"{dashboard['uid']}: variable {variable['name']}",
                query["query"] if isinstance(query, dict) else query,
            )


def all_panels(panels: Iterable[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
    """Every panel, collapsed rows' children included."""
    for panel in panels:
        yield panel
        yield from all_panels(panel.get("panels", []))


def rule_queries(rules_file: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, expr) of every alerting and recording rule of a Prometheus rules file."""
    for group in rules_file.get("groups", []):
        for rule in group.get("rules", []):
            yield f"{group['name']}: {rule.get('alert') or rule.get('record')}", rule["expr"]
