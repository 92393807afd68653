"""Tracing adapters: Langfuse when configured, otherwise a tracer that does nothing."""

from parley.adapters.outbound.langfuse.noop import NoopTracer, NoopTurnTrace
from parley.adapters.outbound.langfuse.tracer import LangfuseTracer
from parley.adapters.outbound.langfuse.turn import LangfuseTurnTrace

__all__ = ["LangfuseTracer", "LangfuseTurnTrace", "NoopTracer", "NoopTurnTrace"]
