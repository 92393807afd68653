"""Rate-limit storage adapter: where the HTTP edge's rate limits count, Redis or this process's memory."""

from parley.adapters.outbound.redis.rate_limit_storage import make_rate_limit_storage

__all__ = ["make_rate_limit_storage"]
