"""The HTML page of a report: one self-contained file (inline CSS and SVG, no script, nothing
fetched), a chart of the score distribution per metric, and the cases worst first.

Every piece of text from the report (replies, reasons, ids, model names) is escaped: a reply
holding ``<script>`` shows as text.
"""

from __future__ import annotations

from html import escape
from typing import Any

_BINS = 10
_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem;color:#1d2433;background:#fafbfc}
h1{font-size:1.5rem}h2{font-size:1.2rem;margin-top:2rem}
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #d0d7de;padding:.3rem .6rem;
text-align:left;vertical-align:top}th{background:#eef1f4}
.warn{background:#fff4ce;border:1px solid #e0c060;padding:.5rem 1rem;margin:1rem 0}
.charts{display:flex;flex-wrap:wrap;gap:1rem}.chart{background:#fff;border:1px solid #d0d7de;padding:.5rem}
.bad{color:#b3261e;font-weight:600}.good{color:#1a7f37}.err{color:#b3261e}
details{margin:.4rem 0;background:#fff;border:1px solid #d0d7de;padding:.4rem .8rem}
summary{cursor:pointer}pre{white-space:pre-wrap;word-break:break-word;margin:.2rem 0}
.muted{color:#57606a}
"""


def _text(value: object) -> str:
    return escape("" if value is None else str(value))


def _number(value: object, digits: int = 3) -> str:
    return f"{value:.{digits}f}" if isinstance(value, int | float) else "n/a"


def _histogram(scores: list[float]) -> list[int]:
    counts = [0] * _BINS
    for score in scores:
        counts[min(_BINS - 1, int(score * _BINS))] += 1
    return counts


def _chart(metric: str, scores: list[float], mean: float | None, threshold: float) -> str:
    """An SVG histogram of ``scores`` (ten bins over [0, 1]) with the mean and threshold marked."""
    width, height, pad = 320, 150, 24
    counts = _histogram(scores)
    top = max(counts) or 1
    bar = (width - 2 * pad) / _BINS
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="{_text(metric)} score distribution">',
        f'<text x="{pad}" y="14" font-size="12">{_text(metric)} (n={len(scores)})</text>',
    ]
    for index, count in enumerate(counts):
        h = (height - 2 * pad - 10) * count / top
        x, y = pad + index * bar, height - pad - h
        colour = "#1a7f37" if (index + 1) / _BINS > threshold else "#cf6a4c"
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar - 2:.1f}" height="{h:.1f}" fill="{colour}">'
            f"<title>{index / _BINS:.1f}-{(index + 1) / _BINS:.1f}: {count}</title></rect>"
        )
    axis_y = height - pad
    parts.append(f'<line x1="{pad}" y1="{axis_y}" x2="{width - pad}" y2="{axis_y}" stroke="#57606a"/>')
    for label in (0, 0.5, 1):
        x = pad + label * (width - 2 * pad)
        parts.append(
            f'<text x="{x:.1f}" y="{axis_y + 14}" font-size="10" text-anchor="middle">{label}</text>'
        )
    marks = [(threshold, "#57606a", "threshold")]
    if mean is not None:
        marks.append((mean, "#0969da", "mean"))
    for value, colour, name in marks:
        x = pad + value * (width - 2 * pad)
        parts.append(
            f'<line x1="{x:.1f}" y1="{pad}" x2="{x:.1f}" y2="{axis_y}" stroke="{colour}" '
            f'stroke-dasharray="4 3"><title>{name} {value:.2f}</title></line>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _case_rank(case: dict[str, Any]) -> tuple[int, float]:
    """Failed cases first, then by lowest score (a verdict error counts as 0)."""
    if case.get("error"):
        return (0, 0.0)
    scores = [v.get("score") for v in (case.get("metrics") or {}).values()]
    numbers = [s if isinstance(s, int | float) else 0.0 for s in scores]
    return (1, min(numbers) if numbers else 1.0)


def _case_html(case: dict[str, Any], threshold: float) -> str:
    metrics = case.get("metrics") or {}
    low = [
        n for n, v in metrics.items() if not isinstance(v.get("score"), int | float) or v["score"] < threshold
    ]
    heading = f"<b>{_text(case.get('id'))}</b> "
    if case.get("trace_url"):
        heading += f'<a href="{_text(case["trace_url"])}">trace</a> '
    elif case.get("trace_id"):
        heading += f'<span class="muted">trace {_text(case["trace_id"])}</span> '

    heading += f'<span class="bad">failed: {_text(case["error"])}</span>' if case.get("error") else ""
    heading += f' <span class="muted">below threshold: {_text(", ".join(low))}</span>' if low else ""
    rows = "".join(
        f"<tr><td>{_text(name)}</td><td>{_number(v.get('score'), 2)}</td>"
        f"<td>{_text(v.get('reason'))}"
        + (f' <span class="err">error: {_text(v.get("error"))}</span>' if v.get("error") else "")
        + "</td></tr>"
        for name, v in metrics.items()
    )
    turns = "".join(
        f"<pre><b>user:</b> {_text(t.get('user'))}</pre><pre><b>agent:</b> {_text(t.get('reply'))}</pre>"
        + "".join(
            f'<pre class="muted">tool {_text(c.get("name"))}({_text(c.get("arguments"))}) -> '
            f"{_text(c.get('result'))}</pre>"
            for c in t.get("tool_calls") or []
        )
        for t in case.get("turns") or []
    )
    reference = (
        f"<pre><b>reference:</b> {_text(case.get('reference'))}</pre>" if case.get("reference") else ""
    )
    tags = _text(", ".join(case.get("tags") or []))
    return (
        f"<details><summary>{heading}</summary><p class='muted'>tags: {tags} · "
        f"latency {_number(case.get('latency_seconds'), 3)} s</p>{turns}{reference}"
        f"<table><tr><th>metric</th><th>score</th><th>reason</th></tr>{rows}</table></details>"
    )


def _langfuse_html(section: Any) -> str:
    """One line: where scores went and how many arrived, or why nothing was sent."""
    if not isinstance(section, dict):
        return "n/a"
    line = _text(section.get("note"))
    if section.get("enabled"):
        line += (
            f" · {section.get('scores_sent', 0)} score(s) sent to {_text(section.get('destination'))}"
            f", {section.get('scores_failed', 0)} failed"
        )
        errors = "".join(f"<li>{_text(error)}</li>" for error in section.get("errors") or [])
        line += f'<ul class="err">{errors}</ul>' if errors else ""
    return line


def render_html(report: dict[str, Any]) -> str:
    """The whole page for ``report`` (as :func:`~.reports.build_report` makes it)."""
    models = report["models"]
    threshold = float(report["configuration"]["threshold"])
    totals = report["totals"]
    warnings = [
        f"The {role} is {_text(info['name'])}, not an LLM: its scores are rough signals."
        for role, info in models.items()
        if not info["is_llm"]
    ]
    metric_rows = "".join(
        f"<tr><td>{_text(name)}</td><td>{_number(m['mean'])}</td><td>{_number(m['pass_rate'])}</td>"
        f"<td>{_number(m['threshold'], 2)}</td><td>{m['scored']}</td><td>{m['errors']}</td></tr>"
        for name, m in report["metrics"].items()
    )
    charts = "".join(
        '<div class="chart">'
        + _chart(
            name,
            [
                float(c["metrics"][name]["score"])
                for c in report["cases"]
                if isinstance((c.get("metrics") or {}).get(name, {}).get("score"), int | float)
            ],
            m["mean"],
            float(m["threshold"]),
        )
        + "</div>"
        for name, m in report["metrics"].items()
    )
    tokens = totals["tokens"]
    cases = sorted(report["cases"], key=_case_rank)
    problems = "".join(f"<li>{_text(p)}</li>" for p in report.get("dataset_problems") or [])
    cost = totals.get("estimated_cost_usd")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Parley evaluation {_text(report["created_at"])}</title>
<style>{_CSS}</style></head><body>
<h1>Parley evaluation</h1>
<p class="muted">{_text(report["created_at"])} · commit {_text(report.get("git_commit") or "unknown")} ·
dataset {_text(report["configuration"]["dataset"])}</p>
{"".join(f'<div class="warn">{w}</div>' for w in warnings)}
<table><tr><th>agent</th><td>{_text(models["agent"]["name"])}</td></tr>
<tr><th>judge</th><td>{_text(models["judge"]["name"])}</td></tr>
<tr><th>cases</th><td>{totals["cases"]} ({_number(totals["success_rate"] * 100, 1)} % succeeded)</td></tr>
<tr><th>latency p50 / p95</th><td>{_number(totals["latency_p50_seconds"])} s /
{_number(totals["latency_p95_seconds"])} s</td></tr>
<tr><th>tool accuracy</th><td>{_number(totals.get("tool_accuracy"))}</td></tr>
<tr><th>tokens (agent / judge)</th><td>{tokens["agent_prompt"] + tokens["agent_completion"]} /
{tokens["judge_prompt"] + tokens["judge_completion"]}</td></tr>
<tr><th>estimated cost</th><td>{"n/a" if cost is None else f"${cost:.4f}"}</td></tr>
<tr><th>Langfuse</th><td>{_langfuse_html(report.get("langfuse"))}</td></tr></table>
<h2>Metrics</h2>
<table><tr><th>metric</th><th>mean</th><th>pass rate</th><th>threshold</th><th>scored</th><th>errors</th></tr>
{metric_rows}</table>
<div class="charts">{charts}</div>
{f"<h2>Dataset lines skipped</h2><ul>{problems}</ul>" if problems else ""}
<h2>Cases, worst first</h2>
{"".join(_case_html(case, threshold) for case in cases)}
</body></html>
"""
