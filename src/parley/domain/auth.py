"""Auth sessions: one login is one refresh-token family."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from uuid import UUID


class TokenType(StrEnum):
    ACCESS = "access"
    REFRESH = "refresh"


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenClaims:
    """What a verified token says. ``session_id`` names the login (the family)."""

    user_id: UUID
    session_id: UUID
    token_id: UUID
    token_type: TokenType
    expires_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenPair:
    access_token: str
    refresh_token: str
    access_expires_in: int
    refresh_expires_in: int


@dataclass(slots=True, kw_only=True)
class AuthSession:
    """One login, and the refresh-token family it grew.

    Rules:
    - only the newest refresh token (``refresh_token_id``) may be exchanged, once;
    - presenting an older one means the family leaked: the whole session is revoked;
    - a revoked or expired session makes every token of the family invalid.
    """

    id: UUID
    user_id: UUID
    refresh_token_id: UUID
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None

    def is_active(self, now: datetime) -> bool:
        return self.revoked_at is None and now < self.expires_at

    def revoke(self, now: datetime) -> None:
        if self.revoked_at is None:
            self.revoked_at = now

    def rotate(self, presented_token_id: UUID, new_token_id: UUID, now: datetime) -> bool:
        """Swap the current refresh token for a new one.

        Returns False (after revoking the family) when ``presented_token_id`` is
        not the current token, i.e. a refresh token is being reused.
        """
        if not self.is_active(now):
            return False
        if presented_token_id != self.refresh_token_id:
            self.revoke(now)
            return False
        self.refresh_token_id = new_token_id
        return True
