"""Which model failures are worth retrying, and how long to wait before retrying.

The policy is a frozen value; each model call keeps its own attempt counter, so no
mutable state is shared between requests.

Retryable (transient): 429 rate limits, 5xx server errors, connection failures and
timeouts. Everything else (400, 401, 403, 404, 422, malformed responses...) fails
the turn at once: retrying would fail the same way and waste the caller's time.
"""

from __future__ import annotations

from dataclasses import dataclass

import openai


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
