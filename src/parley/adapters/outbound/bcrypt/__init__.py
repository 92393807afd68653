"""Password hashing adapter: bcrypt (HMAC-SHA256 pre-hashed) through passlib."""

from parley.adapters.outbound.bcrypt.hasher import PasslibBcryptHasher

__all__ = ["PasslibBcryptHasher"]
