"""Tracing adapter that turns chat turns into Prometheus metrics (LLM calls, tokens, latency)."""

from parley.adapters.outbound.prometheus.tracer import LlmMetrics, PrometheusTracer, PrometheusTurnTrace

__all__ = ["LlmMetrics", "PrometheusTracer", "PrometheusTurnTrace"]
