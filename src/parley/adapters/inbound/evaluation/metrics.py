"""Metrics: every ``evaluation/metrics/prompts/<name>.md`` is one, named by its file.

The file is the judge's instructions. It may start with a header of ``key: value`` lines
between two ``---`` lines:

- ``requires: reference`` -- score it only for cases that have a reference answer;
- ``threshold: 0.8`` -- its own pass mark (else the run's).

Adding a file adds a metric; nothing else changes.
"""

from __future__ import annotations

from pathlib import Path

from parley.application.evaluation.cases import Metric


class MetricFileError(ValueError):
    """A metric file's header cannot be understood (the message names the file)."""


def _header_and_body(text: str) -> tuple[dict[str, str], str]:
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        return {}, text
    try:
        end = next(i for i, line in enumerate(lines[1:], start=1) if line.strip() == "---")
    except StopIteration:
        raise MetricFileError("a header opened with '---' is never closed") from None
    header: dict[str, str] = {}
    for line in lines[1:end]:
        if line.strip():
            key, sep, value = line.partition(":")
            if not sep:
                raise MetricFileError(f"header line {line!r} is not 'key: value'")
            header[key.strip().lower()] = value.strip()
    return header, "\n".join(lines[end + 1 :]).strip()


def load_metric(path: Path) -> Metric:
    header, body = _header_and_body(path.read_text(encoding="utf-8"))
    try:
        threshold = float(header["threshold"]) if "threshold" in header else None
    except ValueError:
        raise MetricFileError(f"{path.name}: threshold {header['threshold']!r} is not a number") from None
    if threshold is not None and not 0 <= threshold <= 1:
        raise MetricFileError(f"{path.name}: threshold must be within [0, 1]")
    unknown = set(header) - {"requires", "threshold"}
    if unknown:
        raise MetricFileError(f"{path.name}: unknown header key(s) {sorted(unknown)}")
    if not body:
        raise MetricFileError(f"{path.name}: the prompt is empty")
    return Metric(
        name=path.stem,
        instructions=body,
        needs_reference=header.get("requires", "").lower() == "reference",
        threshold=threshold,
    )


def load_metrics(directory: Path, only: list[str] | None = None) -> list[Metric]:
    """Every metric of ``directory``, by name, or those named in ``only`` (an unknown name is
    a :class:`MetricFileError` listing the known ones)."""
    paths = {path.stem: path for path in sorted(directory.glob("*.md"))} if directory.is_dir() else {}
    if only:
        missing = [name for name in only if name not in paths]
        if missing:
            raise MetricFileError(f"no metric {missing} in {directory} (there are: {', '.join(paths)})")
        return [load_metric(paths[name]) for name in only]
    return [load_metric(path) for path in paths.values()]
