"""Sending a run's scores to the tracing backend (:class:`ScoreSink`), each on its case's trace.

Rules:
- a case's scores go on the trace of its judged (last) turn; one score per metric with a
  score, its reason as the comment; a case without a trace link, or a metric without a
  score (a verdict error), sends nothing;
- scores are sent ``concurrency`` at a time; a score that is not accepted is counted and its
  error kept (the first few), never raised: the run's results stand without it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from parley.application.evaluation.runner import CaseResult
from parley.ports.scoring import Score, ScoreNotSent, ScoreSink

_log = logging.getLogger(__name__)
KEPT_ERRORS = 10


@dataclass(slots=True)
class ScoreUpload:
    """What became of a run's scores: ``sent``, ``failed`` (with the first errors), and
    ``untraced`` cases (judged, but with no trace to put their scores on)."""

    destination: str
    sent: int = 0
    failed: int = 0
    untraced: int = 0
    errors: list[str] = field(default_factory=list)


def scores_of(results: Sequence[CaseResult]) -> tuple[list[Score], int]:
    """The scores to send, and how many judged cases have no trace to send them to."""
    scores: list[Score] = []
    untraced = 0
    for result in results:
        scored = [verdict for verdict in result.metrics.values() if verdict.score is not None]
        if not scored:
            continue
        link = result.trace
        if link is None:
            untraced += 1
            continue
        scores.extend(
            Score(link.trace_id, v.metric, v.score, v.reason) for v in scored if v.score is not None
        )
    return scores, untraced


async def send_scores(sink: ScoreSink, results: Sequence[CaseResult], *, concurrency: int = 4) -> ScoreUpload:
    """Send every score of ``results`` (see the module docstring); never raises for a refusal."""
    scores, untraced = scores_of(results)
    upload = ScoreUpload(destination=sink.destination, untraced=untraced)
    gate = asyncio.Semaphore(max(1, concurrency))

    async def one(score: Score) -> None:
        async with gate:
            try:
                await sink.send(score)
            except ScoreNotSent as refused:
                _failed(upload, score, str(refused) or "not accepted")
                return
            except Exception as failure:  # a sink breaking its contract must not end the run
                _failed(upload, score, f"{type(failure).__name__}: {failure}")
                return
        upload.sent += 1

    await asyncio.gather(*(one(score) for score in scores))
    return upload


def _failed(upload: ScoreUpload, score: Score, error: str) -> None:
    upload.failed += 1
    _log.warning("Score %s on trace %s not sent: %s", score.name, score.trace_id, error)
    if len(upload.errors) < KEPT_ERRORS:
        upload.errors.append(f"{score.name} on {score.trace_id}: {error}")
