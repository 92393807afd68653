"""The rate-limit storage adapter: memory without a URL, a Redis client that fails fast with one."""

from __future__ import annotations

import time

import pytest
from limits import parse
from limits.errors import StorageError
from limits.storage import MemoryStorage, RedisStorage
from limits.strategies import FixedWindowRateLimiter

from parley.adapters.outbound.redis import make_rate_limit_storage

pytestmark = pytest.mark.unit


def test_without_a_url_limits_count_in_this_process_memory() -> None:
    storage = make_rate_limit_storage(None)

    assert isinstance(storage, MemoryStorage)
    assert FixedWindowRateLimiter(storage).hit(parse("1 per minute"), "someone")


def test_a_redis_url_gives_a_client_that_connects_only_when_used() -> None:
    storage = make_rate_limit_storage("redis://127.0.0.1:1/0")  # nothing listens on port 1

    assert isinstance(storage, RedisStorage)


def test_an_unreachable_redis_fails_as_a_storage_error_within_its_timeout() -> None:
    storage = make_rate_limit_storage("redis://192.0.2.1:6379/0", timeout_seconds=0.2)  # TEST-NET-1
    started = time.monotonic()

    with pytest.raises(StorageError):
        FixedWindowRateLimiter(storage).hit(parse("1 per minute"), "someone")

    # Two attempts of 0.2 s (one retry); the bound is loose for a loaded machine, but far below
    # redis-py's defaults (no socket timeout: a request would hang).
    assert time.monotonic() - started < 10


def test_an_async_storage_url_is_refused() -> None:
    with pytest.raises(ValueError, match="synchronous"):
        make_rate_limit_storage("async+memory://")
