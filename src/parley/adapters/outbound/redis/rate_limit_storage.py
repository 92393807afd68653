"""The storage rate limits count in: a Redis client (shared by every instance) or memory.

Built by the composition root from ``REDIS_URL`` and handed to the HTTP edge, which counts in it
and falls back to its own memory while a shared storage does not answer (see
``adapters/inbound/http/rate_limits.py``). Storages come from the ``limits`` package (slowapi's).
"""

from __future__ import annotations

from typing import Any

from limits.storage import MemoryStorage, Storage, storage_from_string
from redis.backoff import NoBackoff
from redis.retry import Retry

# A rate limiter must not hold a request through redis-py's default retries: a call that does not
# answer in this long fails, and the edge counts in memory instead.
DEFAULT_TIMEOUT_SECONDS = 0.5


def make_rate_limit_storage(url: str | None, *, timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS) -> Storage:
    """Redis at ``url`` (``redis://``, ``rediss://``, ``redis+unix://``, ``redis+sentinel://``,
    ``redis+cluster://``: any scheme of the ``limits`` package), else this process's memory.

    Nothing connects here: the Redis client connects on its first call. Failures of either
    storage are raised as ``limits.errors.StorageError`` (what the edge's fallback catches).
    """
    if url is None:
        return MemoryStorage(wrap_exceptions=True)
    client_options: dict[str, Any] = {  # passed on to redis.Redis
        "socket_timeout": timeout_seconds,
        "socket_connect_timeout": timeout_seconds,
        "retry": Retry(NoBackoff(), 1),  # one retry: a pooled connection may have gone stale
    }
    storage = storage_from_string(url, wrap_exceptions=True, **client_options)
    if not isinstance(storage, Storage):  # an ``async+...`` URL: the limiter's calls are blocking
        raise ValueError("the rate-limit storage URL must name a synchronous storage (no async+ scheme)")
    return storage
