"""The ``TokenIssuer`` contract, for ``PyJwtTokenIssuer``.

There is no fake: the real issuer is pure and fast, and follows a ``FakeClock`` when given one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import jwt
import pytest

from parley.adapters.outbound.jwt import PyJwtTokenIssuer
from parley.domain.auth import TokenType
from parley.ports.auth import InvalidToken, TokenIssuer
from tests.fakes.system import FakeClock

pytestmark = pytest.mark.contract

SECRET = "contract-tests-only-" + "0123456789abcdef" * 3  # 68 bytes: long enough for HS512 too
ACCESS_TTL = timedelta(minutes=15)
REFRESH_TTL = timedelta(days=30)
LEEWAY = timedelta(seconds=5)
USER_ID = UUID("11111111-1111-4111-8111-111111111111")
SESSION_ID = UUID("22222222-2222-4222-8222-222222222222")
TOKEN_ID = UUID("33333333-3333-4333-8333-333333333333")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def issuer(clock: FakeClock) -> PyJwtTokenIssuer:
    return _issuer(clock)


def _issuer(clock: FakeClock, *, secret: str = SECRET, issuer: str = "parley") -> PyJwtTokenIssuer:
    return PyJwtTokenIssuer(
        secret, access_ttl=ACCESS_TTL, refresh_ttl=REFRESH_TTL, issuer=issuer, leeway=LEEWAY, clock=clock
    )


def _issue(issuer: TokenIssuer, clock: FakeClock, token_type: TokenType = TokenType.ACCESS) -> str:
    return issuer.issue(
        user_id=USER_ID, session_id=SESSION_ID, token_id=TOKEN_ID, token_type=token_type, now=clock.now()
    )


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _segments(token: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    header, payload, signature = token.split(".")
    return (
        json.loads(base64.urlsafe_b64decode(header + "==")),
        json.loads(base64.urlsafe_b64decode(payload + "==")),
        signature,
    )


def _forge(header: dict[str, Any], payload: dict[str, Any], *, hmac_key: str | None = SECRET) -> str:
    """A token built by hand, so its header can say anything; HMAC-SHA256 signed unless no key."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"
    if hmac_key is None:
        return f"{signing_input}."
    digest = hmac.new(hmac_key.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(digest)}"


def _genuine_claims(issuer: TokenIssuer, clock: FakeClock) -> dict[str, Any]:
    return _segments(_issue(issuer, clock))[1]


@pytest.mark.parametrize("token_type", list(TokenType))
def test_an_issued_token_verifies_as_its_type(
    issuer: PyJwtTokenIssuer, clock: FakeClock, token_type: TokenType
) -> None:
    token = _issue(issuer, clock, token_type)

    claims = issuer.verify(token, expected_type=token_type)

    ttl = ACCESS_TTL if token_type is TokenType.ACCESS else REFRESH_TTL
    assert (claims.user_id, claims.session_id, claims.token_id) == (USER_ID, SESSION_ID, TOKEN_ID)
    assert claims.token_type is token_type
    assert claims.expires_at == clock.now() + ttl


def test_the_payload_carries_the_documented_claims(issuer: PyJwtTokenIssuer, clock: FakeClock) -> None:
    header, payload, _ = _segments(_issue(issuer, clock, TokenType.REFRESH))

    issued_at = int(clock.now().timestamp())
    assert header["alg"] == "HS256"
    assert payload == {
        "sub": str(USER_ID),
        "sid": str(SESSION_ID),
        "jti": str(TOKEN_ID),
        "typ": "refresh",
        "iss": "parley",
        "iat": issued_at,
        "nbf": issued_at,
        "exp": issued_at + int(REFRESH_TTL.total_seconds()),
    }


def test_a_hand_forged_token_with_genuine_claims_verifies(issuer: PyJwtTokenIssuer, clock: FakeClock) -> None:
    """The control for the forgery tests below: they fail for the one thing they change."""
    forged = _forge({"alg": "HS256", "typ": "JWT"}, _genuine_claims(issuer, clock))

    assert issuer.verify(forged, expected_type=TokenType.ACCESS).token_id == TOKEN_ID


@pytest.mark.parametrize(
    ("issued", "presented_as"),
    [(TokenType.ACCESS, TokenType.REFRESH), (TokenType.REFRESH, TokenType.ACCESS)],
)
def test_a_token_never_verifies_as_the_other_type(
    issuer: PyJwtTokenIssuer, clock: FakeClock, issued: TokenType, presented_as: TokenType
) -> None:
    token = _issue(issuer, clock, issued)

    with pytest.raises(InvalidToken):
        issuer.verify(token, expected_type=presented_as)


def test_a_token_is_valid_until_it_expires(issuer: PyJwtTokenIssuer, clock: FakeClock) -> None:
    token = _issue(issuer, clock)

    clock.advance(ACCESS_TTL - timedelta(seconds=1))
    assert issuer.verify(token, expected_type=TokenType.ACCESS).token_id == TOKEN_ID

    clock.advance(timedelta(seconds=1) + LEEWAY)
    with pytest.raises(InvalidToken):
        issuer.verify(token, expected_type=TokenType.ACCESS)


def test_clock_skew_within_the_leeway_is_tolerated(issuer: PyJwtTokenIssuer, clock: FakeClock) -> None:
    minted_by_a_host_running_ahead = issuer.issue(
        user_id=USER_ID,
        session_id=SESSION_ID,
        token_id=TOKEN_ID,
        token_type=TokenType.ACCESS,
        now=clock.now() + LEEWAY - timedelta(seconds=1),
    )

    assert issuer.verify(minted_by_a_host_running_ahead, expected_type=TokenType.ACCESS).user_id == USER_ID


def test_a_token_from_the_future_is_refused(issuer: PyJwtTokenIssuer, clock: FakeClock) -> None:
    from_the_future = issuer.issue(
        user_id=USER_ID,
        session_id=SESSION_ID,
        token_id=TOKEN_ID,
        token_type=TokenType.ACCESS,
        now=clock.now() + timedelta(minutes=1),
    )

    with pytest.raises(InvalidToken):
        issuer.verify(from_the_future, expected_type=TokenType.ACCESS)


def test_a_tampered_signature_is_refused(issuer: PyJwtTokenIssuer, clock: FakeClock) -> None:
    header, payload, signature = _issue(issuer, clock).split(".")
    # A middle character: all six of its bits are signature bits (the last one carries padding).
    middle = len(signature) // 2
    flipped = "B" if signature[middle] == "A" else "A"
    tampered = f"{header}.{payload}.{signature[:middle]}{flipped}{signature[middle + 1 :]}"

    with pytest.raises(InvalidToken):
        issuer.verify(tampered, expected_type=TokenType.ACCESS)


def test_a_tampered_payload_is_refused(issuer: PyJwtTokenIssuer, clock: FakeClock) -> None:
    header, _, signature = _issue(issuer, clock).split(".")
    claims = _genuine_claims(issuer, clock) | {"sub": str(UUID(int=666))}
    tampered = f"{header}.{_b64(json.dumps(claims).encode())}.{signature}"

    with pytest.raises(InvalidToken):
        issuer.verify(tampered, expected_type=TokenType.ACCESS)


def test_an_unsigned_alg_none_token_is_refused(issuer: PyJwtTokenIssuer, clock: FakeClock) -> None:
    unsigned = _forge({"alg": "none", "typ": "JWT"}, _genuine_claims(issuer, clock), hmac_key=None)

    with pytest.raises(InvalidToken):
        issuer.verify(unsigned, expected_type=TokenType.ACCESS)


def test_a_token_signed_with_another_secret_is_refused(issuer: PyJwtTokenIssuer, clock: FakeClock) -> None:
    impostor = _issuer(clock, secret="another-secret-that-is-also-32-bytes-long")

    with pytest.raises(InvalidToken):
        issuer.verify(_issue(impostor, clock), expected_type=TokenType.ACCESS)


def test_a_token_claiming_an_asymmetric_algorithm_is_refused(
    issuer: PyJwtTokenIssuer, clock: FakeClock
) -> None:
    """Algorithm confusion: the header says RS256 but the signature is HMAC over our secret."""
    confused = _forge({"alg": "RS256", "typ": "JWT"}, _genuine_claims(issuer, clock))

    with pytest.raises(InvalidToken):
        issuer.verify(confused, expected_type=TokenType.ACCESS)


def test_a_token_signed_with_another_hmac_size_is_refused(issuer: PyJwtTokenIssuer, clock: FakeClock) -> None:
    """Only the configured algorithm counts, even when the key is right."""
    hs512 = jwt.encode(_genuine_claims(issuer, clock), SECRET, algorithm="HS512")

    with pytest.raises(InvalidToken):
        issuer.verify(hs512, expected_type=TokenType.ACCESS)


def test_a_token_of_another_issuer_is_refused(issuer: PyJwtTokenIssuer, clock: FakeClock) -> None:
    other_service = _issuer(clock, issuer="someone-else")

    with pytest.raises(InvalidToken):
        issuer.verify(_issue(other_service, clock), expected_type=TokenType.ACCESS)


@pytest.mark.parametrize("claim", ["sub", "sid", "jti", "typ", "iat", "nbf", "exp", "iss"])
def test_a_token_missing_a_claim_is_refused(issuer: PyJwtTokenIssuer, clock: FakeClock, claim: str) -> None:
    claims = _genuine_claims(issuer, clock)
    del claims[claim]

    with pytest.raises(InvalidToken):
        issuer.verify(_forge({"alg": "HS256", "typ": "JWT"}, claims), expected_type=TokenType.ACCESS)


@pytest.mark.parametrize(
    "bad_claims",
    [
        {"sub": "not-a-uuid"},
        {"sid": 42},
        {"jti": ["33333333-3333-4333-8333-333333333333"]},
        {"typ": "id"},
        {"exp": "tomorrow"},
        {"iat": True},
        {"nbf": 1.5e300},
        {"exp": 10**30},
        {"iss": None},
    ],
    ids=lambda claims: next(iter(claims)),
)
def test_a_correctly_signed_token_with_malformed_claims_is_refused(
    issuer: PyJwtTokenIssuer, clock: FakeClock, bad_claims: dict[str, Any]
) -> None:
    claims = _genuine_claims(issuer, clock) | bad_claims

    with pytest.raises(InvalidToken):
        issuer.verify(_forge({"alg": "HS256", "typ": "JWT"}, claims), expected_type=TokenType.ACCESS)


@pytest.mark.parametrize(
    "garbage",
    ["", "garbage", "a.b.c", "..", "Bearer abc.def.ghi", "é.é.é", "x" * 10_000, "eyJhbGciOiJIUzI1NiJ9.e30."],
    ids=["empty", "word", "three-dots", "dots", "bearer", "non-ascii", "huge", "empty-payload"],
)
def test_garbage_is_refused(issuer: PyJwtTokenIssuer, garbage: str) -> None:
    with pytest.raises(InvalidToken):
        issuer.verify(garbage, expected_type=TokenType.ACCESS)


def test_a_genuine_token_with_an_extra_segment_is_refused(issuer: PyJwtTokenIssuer, clock: FakeClock) -> None:
    with pytest.raises(InvalidToken):
        issuer.verify(_issue(issuer, clock) + ".extra", expected_type=TokenType.ACCESS)


def test_issuing_needs_a_timezone_aware_time(issuer: PyJwtTokenIssuer, clock: FakeClock) -> None:
    with pytest.raises(ValueError, match="aware"):
        issuer.issue(
            user_id=USER_ID,
            session_id=SESSION_ID,
            token_id=TOKEN_ID,
            token_type=TokenType.ACCESS,
            now=clock.now().replace(tzinfo=None),
        )


@pytest.mark.parametrize(
    ("secret", "algorithm", "message"),
    [
        ("short", "HS256", "at least 32 bytes"),
        (SECRET, "RS256", "unsupported"),
        (SECRET, "none", "unsupported"),
    ],
)
def test_the_issuer_refuses_weak_or_asymmetric_settings(secret: str, algorithm: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PyJwtTokenIssuer(secret, access_ttl=ACCESS_TTL, refresh_ttl=REFRESH_TTL, algorithm=algorithm)


def test_without_a_clock_the_issuer_follows_the_wall_clock() -> None:
    wall_clock_issuer = PyJwtTokenIssuer(SECRET, access_ttl=ACCESS_TTL, refresh_ttl=REFRESH_TTL)
    long_ago = FakeClock()  # 2025-01-01: far more than 15 minutes before any run of this test

    fresh = _issue(wall_clock_issuer, FakeClock(datetime.now(UTC)))
    stale = _issue(wall_clock_issuer, long_ago)

    assert wall_clock_issuer.verify(fresh, expected_type=TokenType.ACCESS).user_id == USER_ID
    with pytest.raises(InvalidToken):
        wall_clock_issuer.verify(stale, expected_type=TokenType.ACCESS)
