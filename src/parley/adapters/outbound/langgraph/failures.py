"""Model-call retries, all in one place: which failures are worth retrying, how long to wait,
when to give up, and what the caller is told then.

The policy is a frozen value; each model call keeps its own attempt counter, so no
mutable state is shared between requests.

Retryable (transient): 429 rate limits, 5xx server errors, connection failures and
timeouts. Everything else (400, 401, 403, 404, 422, malformed responses...) fails
the turn at once: retrying would fail the same way and waste the caller's time.

The same rule covers the other providers (``init_chat_model``), by what their errors carry
rather than by their types, so no provider SDK is imported here: an integer ``status_code``
attribute (anthropic, ollama, and every SDK generated like openai's), an httpx transport
error or status error, or a class named ``APITimeoutError`` / ``APIConnectionError`` (the
generated SDKs' names). A provider whose errors show none of these is never retried.

Fallbacks (:func:`call_with_fallbacks`): when a model gives up on a *retryable* failure
(its retries spent, nothing streamed), the next model of the list is tried, with its own
retries. A non-retryable failure (400, 401, ...) does not fall back: it says the request
or the configuration is wrong (a context too long, a bad key, an unknown model), which
another model would either refuse too or hide, and a silent switch to a second provider
would hide a broken key until that one fails as well.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import httpx
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
    return _other_provider_reason(error)


def _other_provider_reason(error: BaseException) -> str | None:
    """:func:`retry_reason` for errors of other providers' SDKs (see the module docstring)."""
    if isinstance(error, httpx.HTTPStatusError):
        return _status_reason(error.response.status_code)
    status = getattr(error, "status_code", None)
    if isinstance(status, int) and not isinstance(status, bool):
        return _status_reason(status)
    names = {cls.__name__ for cls in type(error).__mro__}
    if isinstance(error, httpx.TimeoutException) or "APITimeoutError" in names:
        return "request timed out"
    if isinstance(error, httpx.TransportError) or "APIConnectionError" in names:
        return "connection failed"
    return None


def _status_reason(status: int) -> str | None:
    if status == 429:
        return "rate limited (429)"
    return f"server error ({status})" if status >= 500 else None


def failure_summary(error: BaseException) -> str:
    """A short, secret-free description of a model failure, for error messages."""
    if isinstance(error, openai.APIStatusError):
        return f"model request failed with status {error.status_code}"
    status = getattr(error, "status_code", None)
    if isinstance(status, int) and not isinstance(status, bool):
        return f"model request failed with status {status}"
    return f"model request failed ({type(error).__name__})"


@dataclass(frozen=True, slots=True)
class _Exhausted:
    """How a model's attempts ended in a retryable failure with nothing streamed: the one
    ending after which :func:`call_with_fallbacks` tries the next model."""

    attempt: int
    reason: str


class _GaveUp(Exception):
    """Carries the :class:`AgentUnavailable` a model's attempts end with, and whether they
    were exhausted on a retryable failure, from :func:`_attempts` to its two callers."""

    def __init__(self, unavailable: AgentUnavailable, exhausted: _Exhausted | None) -> None:
        super().__init__(str(unavailable))
        self.unavailable, self.exhausted = unavailable, exhausted


ModelCall = Callable[[list[str]], Awaitable[_Reply]]


async def call_with_fallbacks(
    calls: Sequence[tuple[str, ModelCall[_Reply]]], *, policy: RetryPolicy, emit: EventSink, first: int = 0
) -> tuple[int, _Reply]:
    """Make one model call with ``calls[first]`` (name, call), then, each time a model gives up
    on a retryable failure (its retries spent, nothing streamed), with the next one; returns the
    index of the model that answered and its reply.

    Each model gets the rules of :func:`call_with_retries` (its own attempts and backoff);
    moving on is announced as a :class:`ModelRetry` naming the failed model and, as
    ``fallback``, the next one, and happens at once (the backoff is for the failed model's
    server). Any other failure, or the last model's, raises :class:`AgentUnavailable` naming
    the model that failed (see the module docstring for why a non-retryable failure does not
    fall back).
    """
    if not first < len(calls):
        raise ValueError("call_with_fallbacks needs a model at or after `first`")
    index = first
    while True:
        name, call = calls[index]
        try:
            return index, await _attempts(call, policy=policy, model=name, emit=emit)
        except _GaveUp as gave_up:
            exhausted = gave_up.exhausted
            if exhausted is None or index + 1 >= len(calls):
                raise gave_up.unavailable from gave_up.unavailable.__cause__
            index += 1
            attempt, reason = exhausted.attempt, exhausted.reason
            emit(ModelRetry(attempt=attempt, reason=reason, model=name, fallback=calls[index][0]))


async def call_with_retries(
    call: ModelCall[_Reply], *, policy: RetryPolicy, model: str, emit: EventSink
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
    try:
        return await _attempts(call, policy=policy, model=model, emit=emit)
    except _GaveUp as gave_up:
        raise gave_up.unavailable from gave_up.unavailable.__cause__


async def _attempts(call: ModelCall[_Reply], *, policy: RetryPolicy, model: str, emit: EventSink) -> _Reply:
    """:func:`call_with_retries`, ending in :class:`_GaveUp` instead of its AgentUnavailable."""
    attempt = 1
    while True:
        streamed: list[str] = []
        try:
            return await call(streamed)
        except Exception as error:
            reason = retry_reason(error)
            if reason is None or streamed or attempt >= policy.max_attempts:
                unavailable = _unavailable(error, attempt, model=model, streamed=bool(streamed))
                unavailable.__cause__ = error
                exhausted = _Exhausted(attempt, reason) if reason is not None and not streamed else None
                raise _GaveUp(unavailable, exhausted) from error
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
