"""Signed access and refresh tokens (JWS compact form) through PyJWT."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import jwt

from parley.domain.auth import TokenClaims, TokenType
from parley.ports.auth import InvalidToken
from parley.ports.system import Clock

# Symmetric algorithms only: the key is a shared secret. Each needs a key at least as long as
# its digest (RFC 7518 §3.2).
_HMAC_KEY_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}
_REQUIRED_CLAIMS = ["sub", "sid", "jti", "typ", "iat", "nbf", "exp", "iss"]
# Ours are ~350 characters; refusing anything far larger bounds the work a stranger can cause.
MAX_TOKEN_LENGTH = 4096
DEFAULT_LEEWAY = timedelta(seconds=5)


class PyJwtTokenIssuer:
    """Implements ``ports.security.TokenIssuer`` with HMAC-signed JWTs.

    Claims: ``sub`` (user id), ``sid`` (auth session id), ``jti`` (token id), ``typ``
    (``access``/``refresh``), ``iss``, and ``iat``/``nbf``/``exp`` in whole seconds since the epoch
    (so ``TokenClaims.expires_at`` is the issue time plus the TTL, rounded down to the second).

    ``verify`` contract:
    - only ``algorithm`` is accepted (``none``, other HMAC sizes and RS*/ES* headers are refused);
    - every claim above is required, ``iss`` must be ours and ``typ`` must be ``expected_type``;
    - time is read from ``clock`` (default: the UTC wall clock), so tests can share a fake clock;
    - ``leeway`` (default 5 s) tolerates clock skew between instances: a token minted by a host a
      little ahead is not "not yet valid" here; it lengthens a token's life by at most that much;
    - anything wrong raises :class:`InvalidToken`, never a PyJWT error.
    """

    def __init__(
        self,
        secret: str,
        *,
        access_ttl: timedelta,
        refresh_ttl: timedelta,
        algorithm: str = "HS256",
        issuer: str = "parley",
        leeway: timedelta = DEFAULT_LEEWAY,
        clock: Clock | None = None,
    ) -> None:
        _check_key(secret, algorithm)
        if access_ttl <= timedelta(0) or refresh_ttl <= timedelta(0):
            raise ValueError("token lifetimes must be positive")
        if leeway < timedelta(0):
            raise ValueError("leeway must not be negative")
        self.access_ttl = access_ttl
        self.refresh_ttl = refresh_ttl
        self.algorithm = algorithm
        self.issuer = issuer
        self.leeway = leeway
        self._secret = secret
        self._now: Callable[[], datetime] = clock.now if clock is not None else _utc_now

    def issue(
        self, *, user_id: UUID, session_id: UUID, token_id: UUID, token_type: TokenType, now: datetime
    ) -> str:
        """A signed token of ``token_type`` valid from ``now`` for that type's TTL."""
        if now.tzinfo is None:
            raise ValueError("issue() needs a timezone-aware 'now'")
        ttl = self.access_ttl if token_type is TokenType.ACCESS else self.refresh_ttl
        issued_at = int(now.timestamp())
        payload = {
            "sub": str(user_id),
            "sid": str(session_id),
            "jti": str(token_id),
            "typ": token_type.value,
            "iss": self.issuer,
            "iat": issued_at,
            "nbf": issued_at,
            "exp": int((now + ttl).timestamp()),
        }
        return jwt.encode(payload, self._secret, algorithm=self.algorithm)

    def verify(self, token: str, *, expected_type: TokenType) -> TokenClaims:
        """The claims of a genuine, current token of ``expected_type``; else :class:`InvalidToken`."""
        payload = self._decode(token)
        self._check_times(payload)
        claims = _claims_from(payload)
        if claims.token_type is not expected_type:
            raise InvalidToken(f"expected a {expected_type.value} token")
        return claims

    def _decode(self, token: str) -> dict[str, Any]:
        if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
            raise InvalidToken("malformed token")
        try:
            # Time claims are checked against our clock in _check_times, not PyJWT's.
            return jwt.decode(
                token,
                self._secret,
                algorithms=[self.algorithm],
                issuer=self.issuer,
                options={
                    "require": _REQUIRED_CLAIMS,
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
        except (jwt.PyJWTError, ValueError, TypeError) as error:
            raise InvalidToken(type(error).__name__) from error

    def _check_times(self, payload: dict[str, Any]) -> None:
        now = self._now().timestamp()
        leeway = self.leeway.total_seconds()
        issued_at, not_before, expires = (_seconds(payload, name) for name in ("iat", "nbf", "exp"))
        if max(issued_at, not_before) > now + leeway:
            raise InvalidToken("token is not valid yet")
        if expires <= now - leeway:
            raise InvalidToken("token has expired")


def _check_key(secret: str, algorithm: str) -> None:
    if algorithm not in _HMAC_KEY_BYTES:
        raise ValueError(f"unsupported algorithm {algorithm!r}; use one of {sorted(_HMAC_KEY_BYTES)}")
    if len(secret.encode()) < _HMAC_KEY_BYTES[algorithm]:
        raise ValueError(f"{algorithm} needs a secret of at least {_HMAC_KEY_BYTES[algorithm]} bytes")


def _seconds(payload: dict[str, Any], name: str) -> int:
    value = payload[name]
    # bool is an int subclass; "true" is no timestamp.
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidToken(f"claim {name!r} must be an integer")
    return value


def _claims_from(payload: dict[str, Any]) -> TokenClaims:
    try:
        return TokenClaims(
            user_id=_uuid(payload["sub"]),
            session_id=_uuid(payload["sid"]),
            token_id=_uuid(payload["jti"]),
            token_type=TokenType(payload["typ"]),
            expires_at=datetime.fromtimestamp(payload["exp"], UTC),
        )
    except (ValueError, TypeError, OverflowError, OSError) as error:
        raise InvalidToken("malformed claims") from error


def _uuid(value: object) -> UUID:
    if not isinstance(value, str):
        raise TypeError("identifiers are strings")
    return UUID(value)


def _utc_now() -> datetime:
    return datetime.now(UTC)
