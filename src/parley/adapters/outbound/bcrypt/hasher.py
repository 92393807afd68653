"""bcrypt password hashing through passlib (the maintained ``libpass`` fork), off the event loop."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from passlib.context import CryptContext

_T = TypeVar("_T")

# bcrypt's own limits on the cost factor (log2 of the number of rounds).
MIN_ROUNDS = 4
MAX_ROUNDS = 31


class PasslibBcryptHasher:
    """Implements ``ports.security.PasswordHasher`` with passlib's ``bcrypt_sha256`` scheme.

    Contract and choices:
    - plain bcrypt reads only the first 72 bytes (bcrypt 5 even refuses longer input);
      ``bcrypt_sha256`` first runs HMAC-SHA256 over the whole password, so every character counts;
    - hashing and checking run in a bounded thread pool (bcrypt releases the GIL), never on the
      event loop; ``max_workers`` caps how many CPU-heavy checks run at once;
    - ``verify(password, None)`` checks against a dummy hash of the same cost, made once here,
      so an unknown account takes as long as a wrong password, and returns False;
    - a malformed or foreign hash verifies as False instead of raising;
    - after ``close()``/``aclose()`` the hasher refuses work (``RuntimeError``).
    """

    def __init__(self, rounds: int = 12, max_workers: int = 4) -> None:
        if not MIN_ROUNDS <= rounds <= MAX_ROUNDS:
            raise ValueError(f"bcrypt rounds must be between {MIN_ROUNDS} and {MAX_ROUNDS}, got {rounds}")
        if max_workers < 1:
            raise ValueError(f"max_workers must be at least 1, got {max_workers}")
        self._context = CryptContext(schemes=["bcrypt_sha256"], bcrypt_sha256__rounds=rounds)
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="parley-bcrypt")
        # Same scheme and cost as real hashes: checking against it costs what a real check costs.
        self._dummy_hash = self._context.hash(secrets.token_urlsafe(32))

    async def hash(self, password: str) -> str:
        """A fresh salted hash of ``password`` (a new salt each call)."""
        return await self._off_loop(self._context.hash, password)

    async def verify(self, password: str, password_hash: str | None) -> bool:
        """Whether ``password`` matches ``password_hash``; False for None or a malformed hash."""
        if password_hash is None:
            await self._off_loop(self._matches, password, self._dummy_hash)
            return False
        return await self._off_loop(self._matches, password, password_hash)

    def needs_rehash(self, password_hash: str) -> bool:
        """Whether a stored hash should be replaced after the next successful log-in.

        True when it was made with other settings (e.g. fewer rounds) or cannot be read at all.
        Cheap: it parses the hash, it does not run bcrypt.
        """
        try:
            return bool(self._context.needs_update(password_hash))
        except (ValueError, TypeError):
            return True

    def close(self) -> None:
        """Wait for running checks to finish, then stop the pool's threads."""
        self._pool.shutdown(wait=True)

    async def aclose(self) -> None:
        """``close()`` without blocking the event loop while running checks finish."""
        await asyncio.to_thread(self._pool.shutdown, wait=True)

    def _matches(self, password: str, password_hash: str) -> bool:
        try:
            return bool(self._context.verify(password, password_hash))
        except (ValueError, TypeError):
            # passlib raises ValueError (UnknownHashError among them) for hashes it cannot read.
            return False

    async def _off_loop(self, work: Callable[..., _T], *args: str) -> _T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, work, *args)
