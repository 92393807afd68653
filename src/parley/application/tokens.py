"""Minting a token pair for an auth session (shared by log-in and refresh)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from parley.domain.auth import AuthSession, TokenPair, TokenType
from parley.ports.auth import TokenIssuer


def mint_token_pair(
    issuer: TokenIssuer, auth_session: AuthSession, *, access_token_id: UUID, now: datetime
) -> TokenPair:
    """Sign an access token and the session's *current* refresh token."""
    access = issuer.issue(
        user_id=auth_session.user_id,
        session_id=auth_session.id,
        token_id=access_token_id,
        token_type=TokenType.ACCESS,
        now=now,
    )
    refresh = issuer.issue(
        user_id=auth_session.user_id,
        session_id=auth_session.id,
        token_id=auth_session.refresh_token_id,
        token_type=TokenType.REFRESH,
        now=now,
    )
    return TokenPair(
        access_token=access,
        refresh_token=refresh,
        access_expires_in=int(issuer.access_ttl.total_seconds()),
        refresh_expires_in=int(issuer.refresh_ttl.total_seconds()),
    )
