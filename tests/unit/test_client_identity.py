"""Rate-limit keys: which user, address or account a request counts against."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Annotated, cast
from uuid import UUID, uuid4

import pytest
from fastapi import APIRouter, Depends, FastAPI
from fastapi.routing import APIRoute
from starlette.requests import Request

from parley.adapters.inbound.http import routes_auth, routes_chat, routes_health, routes_users
from parley.adapters.inbound.http.audit import email_digest
from parley.adapters.inbound.http.client_identity import (
    ClientIdentity,
    account_key,
    authenticates,
    is_authenticated_route,
)
from parley.adapters.inbound.http.edge import HttpEdge, Services, StreamTiming, attach_edge
from parley.adapters.inbound.http.metrics import HttpMetrics
from parley.domain.auth import TokenClaims, TokenType
from parley.ports.auth import InvalidToken

pytestmark = pytest.mark.unit

ALICE = uuid4()
PROXIES = ["10.0.0.0/8", "2001:db8::1"]


class OneTokenIssuer:
    """Knows one genuine access token, ``alice-access``, and one refresh token."""

    def verify(self, token: str, *, expected_type: TokenType) -> TokenClaims:
        kinds = {"alice-access": TokenType.ACCESS, "alice-refresh": TokenType.REFRESH}
        if kinds.get(token) is not expected_type:
            raise InvalidToken(token)
        return TokenClaims(
            user_id=ALICE,
            session_id=UUID(int=1),
            token_id=UUID(int=2),
            token_type=expected_type,
            expires_at=datetime(2100, 1, 1, tzinfo=UTC),
        )


@authenticates
async def principal() -> str:
    """Stands for the bearer principal: the dependency that requires an access token."""
    return "alice"


async def owned_thing(user: Annotated[str, Depends(principal)]) -> str:
    return f"{user}'s thing"


async def read_thing(thing: Annotated[str, Depends(owned_thing)]) -> str:
    return thing


async def take_credentials(email: str) -> str:
    return email


AUTHENTICATED = APIRoute("/me", read_thing)  # needs the principal through another dependency
ANONYMOUS = APIRoute("/login", take_credentials)
CREDENTIAL_ROUTES = {"/api/v1/auth/register", "/api/v1/auth/login", "/api/v1/auth/refresh"}


def request(peer: str | None, *headers: tuple[str, str], route: APIRoute | None = AUTHENTICATED) -> Request:
    app = FastAPI()
    services = SimpleNamespace(token_issuer=OneTokenIssuer)  # the one service identity uses
    edge = HttpEdge(
        services=cast(Services, services),
        metrics=cast(HttpMetrics, None),
        streams=StreamTiming(ping_seconds=15, drain_seconds=20),
        environment="test",
        rate_limits=None,
    )
    attach_edge(app, edge)
    return Request(
        {
            "type": "http",
            "app": app,
            "client": (peer, 40000) if peer else None,
            "headers": [(name.lower().encode(), value.encode()) for name, value in headers],
            "route": route,
        }
    )


def key(peer: str | None, *headers: tuple[str, str], route: APIRoute | None = AUTHENTICATED) -> str:
    return ClientIdentity(PROXIES).key(request(peer, *headers, route=route))


def test_a_genuine_access_token_names_its_user_from_any_address() -> None:
    bearer = ("Authorization", "Bearer alice-access")

    assert key("198.51.100.1", bearer) == key("203.0.113.9", bearer) == f"user:{ALICE}"


@pytest.mark.parametrize("route", [ANONYMOUS, None], ids=["credentials route", "no route"])
def test_off_authenticated_routes_a_genuine_access_token_is_ignored(route: APIRoute | None) -> None:
    bearer = ("Authorization", "Bearer alice-access")

    assert key("198.51.100.1", bearer, route=route) == "address:198.51.100.1"
    assert key("10.1.2.3", bearer, ("X-Forwarded-For", "203.0.113.5"), route=route) == "address:203.0.113.5"


def test_a_route_is_authenticated_by_the_principal_at_any_depth_or_from_its_router() -> None:
    router = APIRouter(dependencies=[Depends(principal)])
    router.add_api_route("/anything", take_credentials)
    (from_router,) = router.routes
    assert isinstance(from_router, APIRoute)

    assert is_authenticated_route(AUTHENTICATED)
    assert is_authenticated_route(APIRoute("/direct", owned_thing))
    assert is_authenticated_route(from_router)
    assert not is_authenticated_route(ANONYMOUS)


def test_the_routes_that_take_credentials_are_the_only_api_routes_keyed_by_address() -> None:
    routers = (routes_auth.router, routes_users.router, routes_chat.router, routes_health.router)
    routes = [route for router in routers for route in router.routes if isinstance(route, APIRoute)]

    anonymous = {route.path for route in routes if not is_authenticated_route(route)}

    assert anonymous == CREDENTIAL_ROUTES | {"/health"}  # /health is never limited
    assert "/api/v1/auth/logout" in {route.path for route in routes if is_authenticated_route(route)}


def test_an_accounts_key_is_one_per_address_and_never_shows_it() -> None:
    ada = account_key(email_digest("ada@example.com"))

    assert (
        ada
        == account_key(email_digest("  ADA@Example.com "))
        == account_key(email_digest("\uff41da@example.com"))
    )
    assert ada != account_key(email_digest("bob@example.com"))
    assert ada.startswith("account:")
    assert "ada" not in ada


@pytest.mark.parametrize(
    "authorization", ["Bearer forged", "Bearer alice-refresh", "Basic alice-access", "Bearer "]
)
def test_anything_but_a_genuine_access_token_counts_against_the_address(authorization: str) -> None:
    assert key("198.51.100.1", ("Authorization", authorization)) == "address:198.51.100.1"


def test_an_untrusted_peer_is_the_client_whatever_it_forwards() -> None:
    assert key("198.51.100.1", ("X-Forwarded-For", "203.0.113.5")) == "address:198.51.100.1"


def test_a_trusted_proxy_names_the_client_it_saw() -> None:
    assert key("10.1.2.3", ("X-Forwarded-For", "203.0.113.5")) == "address:203.0.113.5"


def test_what_the_client_claims_left_of_the_first_untrusted_hop_is_ignored() -> None:
    forwarded = ("X-Forwarded-For", "192.0.2.66, 203.0.113.5, 10.9.9.9")

    assert key("10.1.2.3", forwarded) == "address:203.0.113.5"


def test_several_forwarded_headers_are_one_list() -> None:
    headers = (("X-Forwarded-For", "192.0.2.66"), ("X-Forwarded-For", "203.0.113.5"))

    assert key("2001:db8::1", *headers) == "address:203.0.113.5"


def test_a_malformed_hop_stops_at_the_last_address_a_proxy_vouched_for() -> None:
    forwarded = ("X-Forwarded-For", "203.0.113.5, not-an-address, 10.9.9.9")

    assert key("10.1.2.3", forwarded) == "address:10.9.9.9"


def test_when_every_hop_is_a_trusted_proxy_the_leftmost_is_the_client() -> None:
    assert key("10.1.2.3", ("X-Forwarded-For", "10.4.4.4, 10.9.9.9")) == "address:10.4.4.4"


def test_a_request_without_a_peer_shares_the_unknown_budget() -> None:
    assert key(None) == "address:unknown"


def test_an_invalid_trusted_proxy_refuses_to_start() -> None:
    with pytest.raises(ValueError, match="not-a-network"):
        ClientIdentity(["not-a-network"])
