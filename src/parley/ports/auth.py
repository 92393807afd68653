"""Authentication ports: password hashing and token issuing."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol
from uuid import UUID

from parley.domain.auth import TokenClaims, TokenType


class InvalidToken(Exception):
    """The token is malformed, tampered with, expired, or of another type."""


class PasswordHasher(Protocol):
    """Slow, salted password hashing that never blocks the event loop.

    Contract:
    - ``hash`` output verifies with ``verify`` and never contains the password;
    - every character counts: passwords differing only after byte 72 do not both verify;
    - ``verify(password, None)`` does the same work as a real check and returns False,
      so an unknown account costs the same time as a wrong password;
    - a malformed hash verifies as False instead of raising.
    """

    async def hash(self, password: str) -> str: ...

    async def verify(self, password: str, password_hash: str | None) -> bool: ...


class TokenIssuer(Protocol):
    """Signs and verifies access and refresh tokens (cheap: no hashing, no I/O).

    Contract:
    - every token carries its type; a token of one type never verifies as the other;
    - only the configured algorithm is accepted (``none`` and confused algorithms are refused);
    - expired, tampered or malformed tokens raise :class:`InvalidToken`.
    """

    access_ttl: timedelta
    refresh_ttl: timedelta

    def issue(
        self, *, user_id: UUID, session_id: UUID, token_id: UUID, token_type: TokenType, now: datetime
    ) -> str: ...

    def verify(self, token: str, *, expected_type: TokenType) -> TokenClaims: ...
