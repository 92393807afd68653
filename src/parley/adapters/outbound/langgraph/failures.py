"""Model-call retries, all in one place: which failures are worth retrying, how long to wait,
when to give up, and what the caller is told then.

The policy is a frozen value; each model call keeps its own attempt counter, so no
mutable state is shared between requests.

Retryable (transient): 429 rate limits, 5xx server errors, connection failures and
timeouts. Everything else (400, 401, 403, 404, 422, malformed responses...) fails
the turn at once: retrying would fail the same way and waste the caller's time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import openai

from parley.ports.agent import AgentUnavailable, EventSink, ModelRetry

_Reply = TypeVar("_Reply")


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """``max_attempts`` counts the first try; the n-th retry waits ``backoff_base * 2**(n-1)``."""

    max_attempts: int = 3
    backoff_base: float = 0.5
    backoff_max: float = 8.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.backoff_base < 0 or self.backoff_max < 0:
            raise ValueError("backoff must not be negative")

    def delay_before(self, retry_number: int) -> float:
        """Seconds to wait before the ``retry_number``-th retry (1-based), capped."""
        return float(min(self.backoff_max, self.backoff_base * 2 ** (retry_number - 1)))


def retry_reason(error: BaseException) -> str | None:
    """A short, secret-free reason when ``error`` is transient; None when it is not."""
    if isinstance(error, openai.RateLimitError):
        return "rate limited (429)"
    if isinstance(error, openai.APIStatusError):
        return f"server error ({error.status_code})" if error.status_code >= 500 else None
    if isinstance(error, openai.APITimeoutError):
        return "request timed out"
    if isinstance(error, openai.APIConnectionError):
        # langchain-openai also wraps transport errors raised mid-stream as this.
        return "connection failed"
    return None


def failure_summary(error: BaseException) -> str:
    """A short, secret-free description of a model failure, for error messages."""
    if isinstance(error, openai.APIStatusError):
        return f"model request failed with status {error.status_code}"
    return f"model request failed ({type(error).__name__})"


async def call_with_retries(
    call: Callable[[list[str]], Awaitable[_Reply]], *, policy: RetryPolicy, model: str, emit: EventSink
) -> _Reply:
    """Make one model call (``call``), retrying it per ``policy``.

    - ``call`` appends each piece of text it streams to the list it is given;
    - a failure is retried only when it is transient (:func:`retry_reason`) and produced no
      text yet: once text has reached the client a retry would duplicate it;
    - each retry is announced with :class:`ModelRetry` (``attempt`` is the 1-based number of
      the attempt that just failed), then follows after :meth:`RetryPolicy.delay_before`;
    - otherwise, or after ``policy.max_attempts`` attempts, :class:`AgentUnavailable` naming
      ``model`` is raised, with a short, secret-free reason.
    """
    attempt = 1
    while True:
        streamed: list[str] = []
        try:
            return await call(streamed)
        except Exception as error:
            reason = retry_reason(error)
            if reason is None or streamed or attempt >= policy.max_attempts:
                raise _unavailable(error, attempt, model=model, streamed=bool(streamed)) from error
            emit(ModelRetry(attempt=attempt, reason=reason, model=model))
            await asyncio.sleep(policy.delay_before(attempt))
            attempt += 1


def _unavailable(error: Exception, attempt: int, *, model: str, streamed: bool) -> AgentUnavailable:
    if streamed:
        detail = f"{failure_summary(error)} after part of the reply was sent"
    elif retry_reason(error) is not None:
        detail = f"{failure_summary(error)}; gave up after {attempt} attempt(s)"
    else:
        detail = failure_summary(error)
    return AgentUnavailable(detail, model=model)
