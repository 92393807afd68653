"""Tracing adapters: Langfuse when configured, otherwise a tracer that does nothing; and
Langfuse's public API as the ``ScoreSink`` / ``TraceSource`` of ``parley eval``.

Names are loaded on first use (PEP 562): importing the package, or the no-op tracer, must
not import the Langfuse SDK (~0.4 s), which a deployment without tracing never needs.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from parley.adapters.outbound.langfuse.noop import NoopTracer, NoopTurnTrace
    from parley.adapters.outbound.langfuse.public_api import LangfuseScoreSink, LangfuseTraceSource
    from parley.adapters.outbound.langfuse.tracer import LangfuseTracer
    from parley.adapters.outbound.langfuse.turn import LangfuseTurnTrace

_HOMES = {
    "LangfuseTracer": "tracer",
    "LangfuseTurnTrace": "turn",
    "NoopTracer": "noop",
    "NoopTurnTrace": "noop",
    "LangfuseScoreSink": "public_api",
    "LangfuseTraceSource": "public_api",
}
__all__ = [
    "LangfuseScoreSink",
    "LangfuseTraceSource",
    "LangfuseTracer",
    "LangfuseTurnTrace",
    "NoopTracer",
    "NoopTurnTrace",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{home}"), name)
