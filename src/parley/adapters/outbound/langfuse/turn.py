"""One chat turn as a Langfuse trace (SDK v5, OpenTelemetry based).

What Langfuse receives for one turn:

- a root ``agent`` observation ``chat-turn`` carrying the trace attributes
  (``user.id``, ``session.id`` = the conversation id, trace name), the user input
  and, at ``end()``, the reply and a level (ERROR when the turn failed);
- one ``generation`` per model call (model, usage ``input``/``output``/``total``,
  its own start/end time, ``completion_start_time`` = first token);
- one ``tool`` observation per tool call;
- one ``event`` per retry (level WARNING) and per error (level ERROR, the error
  kind as status message), at the moment the port gives.

Every method only hands spans to the SDK's batch processor (no network on the
caller's thread) and logs instead of raising.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, ParamSpec

from langfuse import (
    Langfuse,
    LangfuseAgent,
    LangfuseEvent,
    LangfuseGeneration,
    LangfuseTool,
)
from loguru import logger
from opentelemetry import context as otel_context
from opentelemetry import trace as otel_trace

from parley.domain.chat import MessageStatus
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

TRACE_NAME = "chat-turn"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_SAFE_INTEGER = 2**53 - 1

_P = ParamSpec("_P")

Level = Literal["DEBUG", "DEFAULT", "WARNING", "ERROR"]


def _swallowing(operation: str) -> Callable[[Callable[_P, None]], Callable[_P, None]]:
    """Decorate a tracing method so that it logs, never raises (the port's contract)."""

    def decorate(method: Callable[_P, None]) -> Callable[_P, None]:
        @functools.wraps(method)
        def guarded(*args: _P.args, **kwargs: _P.kwargs) -> None:
            try:
                method(*args, **kwargs)
            except Exception as exc:
                # Only the exception type: its text may quote message bodies.
                logger.warning("Langfuse tracing: {} failed ({})", operation, type(exc).__name__)

        return guarded

    return decorate


def _clean(text: str) -> str:
    """Valid UTF-8 only: the exporter drops a string holding a lone surrogate."""
    return text.encode("utf-8", "replace").decode("utf-8")


def _token_count(value: int) -> int:
    """Usage as Langfuse stores it: non-negative and within JSON's safe integers."""
    return max(0, min(int(value), _MAX_SAFE_INTEGER))


def _nanos(moment: datetime) -> int:
    """OpenTelemetry time: integer nanoseconds since the epoch (naive datetimes taken as UTC).

    Integer arithmetic: a float timestamp would lose the microseconds.
    """
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // timedelta(microseconds=1) * 1_000


class LangfuseTurnTrace:
    """One chat turn as a Langfuse trace; see the module docstring for its shape."""

    def __init__(
        self,
        *,
        client: Langfuse,
        tracer: otel_trace.Tracer,
        trace_attributes: dict[str, str],
        capture_content: bool,
        started: TurnStarted,
        host: str | None = None,
    ) -> None:
        self._client = client
        self._tracer = tracer
        self._trace_attributes = trace_attributes
        self._capture_content = capture_content
        self._error_kinds: list[str] = []
        self._ended = False
        # An empty parent context: the turn is its own trace even when the caller
        # runs inside some other OpenTelemetry span.
        root_span = self._start_span(TRACE_NAME, _nanos(started.at), parent=otel_context.Context())
        self._root_context = otel_trace.set_span_in_context(root_span)
        # Langfuse keys a trace by its OpenTelemetry trace id (32 lowercase hex digits) and
        # serves /trace/<id>, which redirects to the trace's page in its project.
        trace_id = format(root_span.get_span_context().trace_id, "032x")
        self._link = TraceLink(trace_id, f"{host.rstrip('/')}/trace/{trace_id}" if host else None)
        self._root = LangfuseAgent(
            otel_span=root_span,
            langfuse_client=client,
            input=self._content(started.input_text),
            metadata={"streaming": started.streaming, "input_chars": len(started.input_text)},
        )

    # --- the TurnTrace port -------------------------------------------------
    @property
    def link(self) -> TraceLink:
        return self._link

    @_swallowing("record")
    def record(self, event: TraceEvent) -> None:
        """Translate one event into its observation; events after the end are ignored."""
        if self._ended:
            return
        match event:
            case ModelCalled():
                self._model_called(event)
            case ToolUsed():
                self._tool_used(event)
            case ModelRetried(model=model, attempt=attempt, reason=reason, at=at, fallback=fallback):
                metadata: dict[str, Any] = {"model": _clean(model), "attempt": attempt}
                if fallback is not None:
                    metadata["fallback"] = _clean(fallback)
                self._event("retry", at, level="WARNING", status_message=_clean(reason), metadata=metadata)
            case TurnFailed(kind=kind, model=model, at=at):
                # The turn's root will be ERROR as well.
                kind = _clean(kind)
                self._error_kinds.append(kind)
                metadata = {"error_kind": kind, "model": _clean(model or "")}
                self._event("error", at, level="ERROR", status_message=kind, metadata=metadata)
            case TurnEnded():
                self._end(event)

    def _model_called(self, call: ModelCalled) -> None:
        """One finished model call: its own start/end time, usage and first token."""
        usage = {"input": _token_count(call.prompt_tokens), "output": _token_count(call.completion_tokens)}
        usage["total"] = _token_count(usage["input"] + usage["output"])
        span = self._start_span(f"llm:{call.model}", _nanos(call.started_at), parent=self._root_context)
        generation = LangfuseGeneration(
            otel_span=span,
            langfuse_client=self._client,
            model=_clean(call.model),
            usage_details=usage,
            completion_start_time=call.first_token_at,
            output=self._content(call.output),
        )
        generation.end(end_time=_nanos(call.ended_at))

    def _tool_used(self, tool_call: ToolUsed) -> None:
        """One tool call; the port gives a single instant, so it has zero duration."""
        at = _nanos(tool_call.at)
        tool = LangfuseTool(
            otel_span=self._start_span(f"tool:{tool_call.name}", at, parent=self._root_context),
            langfuse_client=self._client,
            input=self._content(tool_call.arguments),
            output=self._content(tool_call.result),
            metadata={"tool": _clean(tool_call.name)},
        )
        tool.end(end_time=at)

    def _end(self, ended: TurnEnded) -> None:
        """Finish the trace with the turn's status and reply."""
        self._ended = True
        level, status_message = self._outcome(ended.status)
        self._root.update(
            output=self._content(ended.output),
            level=level,
            status_message=status_message,
            metadata={"status": _clean(ended.status), "output_chars": len(ended.output)},
        )
        self._root.end(end_time=_nanos(ended.at))

    # --- internals ----------------------------------------------------------
    def _start_span(self, name: str, start_ns: int, *, parent: otel_context.Context) -> otel_trace.Span:
        # The SDK's start_observation() cannot take a start time (langfuse#9404) and
        # the port reports calls after the fact, so spans are started on the SDK's
        # own tracer scope with explicit timestamps and then wrapped by the SDK's
        # public observation classes, exactly as the SDK does for its events.
        span = self._tracer.start_span(_clean(name), context=parent, start_time=start_ns)
        # Trace attributes go on every observation: Langfuse aggregates by user and
        # session only over observations that carry them.
        span.set_attributes(self._trace_attributes)
        return span

    def _event(
        self, name: str, at: datetime, *, level: Level, status_message: str, metadata: dict[str, Any]
    ) -> None:
        moment = _nanos(at)
        LangfuseEvent(
            otel_span=self._start_span(name, moment, parent=self._root_context),
            langfuse_client=self._client,
            level=level,
            status_message=status_message,
            metadata=metadata,
        ).end(end_time=moment)

    def _outcome(self, status: str) -> tuple[Level, str | None]:
        if self._error_kinds or status == MessageStatus.FAILED:
            return "ERROR", ", ".join(self._error_kinds) or _clean(status)
        if status == MessageStatus.INCOMPLETE:
            return "WARNING", _clean(status)
        return "DEFAULT", None

    def _content(self, value: Any) -> Any:
        """Message bodies and tool payloads are only sent when content capture is on."""
        if not self._capture_content:
            return None
        return _clean(value) if isinstance(value, str) else value
