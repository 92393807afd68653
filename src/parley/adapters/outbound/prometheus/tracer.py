"""``Tracer`` adapter that records chat turns as Prometheus metrics.

Families (all labelled by the model that actually answered, as the agent reports it):

- ``parley_llm_calls_total{model}``, ``parley_llm_call_duration_seconds{model}``,
  ``parley_llm_time_to_first_token_seconds{model}``,
  ``parley_llm_tokens_total{model, kind="prompt|completion"}``;
- ``parley_llm_retries_total{model, reason}``, ``parley_llm_errors_total{model, kind}``;
- ``parley_llm_tool_calls_total{tool}``, ``parley_chat_turns_total{status}``;
- ``parley_llm_active_streams``: turns whose agent stream is running (``livesum`` in
  multiprocess mode, so dead workers drop out).

Contract (from the port): nothing here raises into the caller or does I/O; a failure
is logged (type only) and the sample dropped. Label values are cut to
:data:`MAX_LABEL_CHARS` so a misbehaving caller cannot blow up label size.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import ParamSpec

from loguru import logger
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.registry import REGISTRY

from parley.ports.tracing import (
    ModelCalled,
    ModelRetried,
    ToolUsed,
    TraceEvent,
    TraceLink,
    TurnEnded,
    TurnFailed,
    TurnStarted,
)

MAX_LABEL_CHARS = 100
UNKNOWN = "unknown"
# Model calls range from sub-second (small local models) to minutes (long completions).
CALL_SECONDS_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0)
FIRST_TOKEN_SECONDS_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)

_P = ParamSpec("_P")


def _label(value: object) -> str:
    text = str(value) if value is not None else ""
    return text[:MAX_LABEL_CHARS] or UNKNOWN


def _seconds(start: datetime, end: datetime) -> float:
    """Elapsed seconds, never negative (clocks may step backwards)."""
    return max(0.0, (end - start).total_seconds())


def _never_raising(method: Callable[_P, None]) -> Callable[_P, None]:
    """The port's promise: a metrics failure is logged, never raised into the turn."""

    @functools.wraps(method)
    def guarded(*args: _P.args, **kwargs: _P.kwargs) -> None:
        try:
            method(*args, **kwargs)
        except Exception as exc:
            logger.warning("Prometheus tracing: {} failed ({})", method.__name__, type(exc).__name__)

    return guarded


@dataclass(frozen=True, slots=True)
class LlmMetrics:
    """The metric families, registered once per registry by :meth:`register`."""

    calls: Counter
    call_seconds: Histogram
    first_token_seconds: Histogram
    tokens: Counter
    retries: Counter
    errors: Counter
    tool_calls: Counter
    turns: Counter
    active_streams: Gauge

    @classmethod
    def register(cls, registry: CollectorRegistry) -> LlmMetrics:
        """Create every family on ``registry`` (raises ValueError if they already exist there)."""
        return cls(
            calls=Counter("parley_llm_calls", "Model calls that finished", ["model"], registry=registry),
            call_seconds=Histogram(
                "parley_llm_call_duration_seconds",
                "Duration of one model call, request to last token",
                ["model"],
                buckets=CALL_SECONDS_BUCKETS,
                registry=registry,
            ),
            first_token_seconds=Histogram(
                "parley_llm_time_to_first_token_seconds",
                "Time from the start of a model call to its first streamed token",
                ["model"],
                buckets=FIRST_TOKEN_SECONDS_BUCKETS,
                registry=registry,
            ),
            tokens=Counter(
                "parley_llm_tokens",
                "Tokens used, by kind (prompt|completion)",
                ["model", "kind"],
                registry=registry,
            ),
            retries=Counter(
                "parley_llm_retries", "Model calls retried", ["model", "reason"], registry=registry
            ),
            errors=Counter(
                "parley_llm_errors",
                "Turns the model failed, by error kind",
                ["model", "kind"],
                registry=registry,
            ),
            tool_calls=Counter(
                "parley_llm_tool_calls", "Tool calls made by the agent", ["tool"], registry=registry
            ),
            turns=Counter(
                "parley_chat_turns", "Chat turns that ended, by stored status", ["status"], registry=registry
            ),
            active_streams=Gauge(
                "parley_llm_active_streams",
                "Chat turns whose agent stream is running",
                registry=registry,
                multiprocess_mode="livesum",
            ),
        )


class PrometheusTurnTrace:
    """One turn's metrics; see the module docstring. The turn is counted once, at its end."""

    def __init__(self, metrics: LlmMetrics) -> None:
        self._metrics = metrics
        self._ended = False
        self._start()

    @property
    def link(self) -> TraceLink | None:
        """Metrics keep no per-turn trace."""
        return None

    @_never_raising
    def _start(self) -> None:
        self._metrics.active_streams.inc()

    @_never_raising
    def record(self, event: TraceEvent) -> None:
        if self._ended:
            return
        m = self._metrics
        match event:
            case ModelCalled():
                self._model_called(event)
            case ToolUsed(name=name):
                m.tool_calls.labels(_label(name)).inc()
            case ModelRetried(model=model, reason=reason):
                m.retries.labels(_label(model), _label(reason)).inc()
            case TurnFailed(kind=kind, model=model):
                m.errors.labels(_label(model), _label(kind)).inc()
            case TurnEnded(status=status):
                # Count the turn by status and release its active-stream slot.
                self._ended = True
                m.active_streams.dec()
                m.turns.labels(_label(status)).inc()

    def _model_called(self, call: ModelCalled) -> None:
        """Count one finished model call: its latency, first token and usage."""
        m, name = self._metrics, _label(call.model)
        m.calls.labels(name).inc()
        m.call_seconds.labels(name).observe(_seconds(call.started_at, call.ended_at))
        if call.first_token_at is not None:
            m.first_token_seconds.labels(name).observe(_seconds(call.started_at, call.first_token_at))
        m.tokens.labels(name, "prompt").inc(max(0, call.prompt_tokens))
        m.tokens.labels(name, "completion").inc(max(0, call.completion_tokens))


class PrometheusTracer:
    """``Tracer`` recording LLM metrics on ``registry`` (the process-wide one by default).

    One tracer per registry: the families are registered at construction, and
    prometheus-client refuses a second registration of the same names. Tests pass a
    private ``CollectorRegistry`` so they never depend on global state.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.metrics = LlmMetrics.register(REGISTRY if registry is None else registry)

    def start_turn(self, started: TurnStarted) -> PrometheusTurnTrace:
        return PrometheusTurnTrace(self.metrics)

    async def aclose(self) -> None:
        """Nothing to flush: Prometheus pulls the values."""
