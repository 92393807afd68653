"""Who a request counts against for rate limiting: a user, a client address, or an account.

Contract:
- only on an *authenticated route* (one that depends, directly or not, on a dependency
  marked with :func:`authenticates`: the bearer principal) does a genuine, unexpired access
  token (signature checked, no database) make the key ``user:<user id>``, whatever address
  it comes from; a revoked-but-signed token still names its user;
- every other route (register, log in, refresh: the routes that check credentials or mint
  tokens, and any route added without the bearer principal) is keyed by the address
  whatever ``Authorization`` header is sent: a token the caller chooses must never buy a
  fresh budget of credential attempts;
- on an authenticated route, anything but a genuine access token (none, a refresh token, a
  forged or expired one) -> ``address:<ip>``;
- the address is the direct peer's, unless the peer is a trusted proxy: then
  ``X-Forwarded-For`` is read from the right, skipping trusted proxies, and the first
  address that is not one is the client (the left part of the header is the client's own
  claim and is never believed past an untrusted hop);
- a route that knows which account an attempt targets (log in, once its body is read) also
  counts it against ``account:<pseudonym>`` (:func:`account_key`), whoever sends it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from typing import Any, TypeVar

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.requests import Request

from parley.adapters.inbound.http.edge import edge_of
from parley.domain.auth import TokenType
from parley.ports.auth import InvalidToken

_Address = IPv4Address | IPv6Address
_Dependency = TypeVar("_Dependency", bound=Callable[..., Any])
_AUTHENTICATES = "__parley_authenticates__"
UNKNOWN_ADDRESS = "unknown"


def authenticates(dependency: _Dependency) -> _Dependency:
    """Mark the dependency that requires a bearer access token (returned unchanged).

    Routes that depend on it, directly or through other dependencies, are *authenticated
    routes*: their rate limits are keyed by the token's user. Every other route is keyed by
    the client address, so a route that forgets it errs on the strict side.
    """
    setattr(dependency, _AUTHENTICATES, True)
    return dependency


def is_authenticated_route(route: APIRoute) -> bool:
    """Whether ``route`` requires a bearer access token (see :func:`authenticates`)."""
    return _requires_bearer(route.dependant)


def _requires_bearer(dependant: Dependant) -> bool:
    return any(
        getattr(dependency.call, _AUTHENTICATES, False) or _requires_bearer(dependency)
        for dependency in dependant.dependencies
    )


def account_key(pseudonym: str) -> str:
    """The key of one target account's budget; ``pseudonym`` names the account without
    revealing it (the login route passes ``audit.email_digest`` of the e-mail tried, so every
    spelling the domain takes for one address, registered or not, shares one budget)."""
    return f"account:{pseudonym}"


class ClientIdentity:
    """Computes rate-limit keys; ``trusted_proxies`` are IPs or CIDRs (invalid ones refuse to start)."""

    def __init__(self, trusted_proxies: Sequence[str] = ()) -> None:
        self._proxies: tuple[IPv4Network | IPv6Network, ...] = tuple(
            ip_network(proxy.strip(), strict=False) for proxy in trusted_proxies
        )

    def key(self, request: Request) -> str:
        """``user:<id>`` or ``address:<ip>``, by the rules of the module docstring."""
        route = request.scope.get("route")
        authenticated = isinstance(route, APIRoute) and is_authenticated_route(route)
        user_id = _user_id(request) if authenticated else None
        return f"user:{user_id}" if user_id else f"address:{self.address(request)}"

    def address(self, request: Request) -> str:
        peer = _parse(request.client.host) if request.client else None
        if peer is None:
            return UNKNOWN_ADDRESS
        client = peer
        if self._is_trusted(peer):
            for hop in reversed(_forwarded_hops(request)):
                address = _parse(hop)
                if address is None:
                    break  # a malformed hop: keep the last address a trusted proxy vouched for
                client = address
                if not self._is_trusted(address):
                    break
        return str(client)

    def _is_trusted(self, address: _Address) -> bool:
        return any(address in network for network in self._proxies)


def _forwarded_hops(request: Request) -> list[str]:
    # Several X-Forwarded-For headers are one list, in order (RFC 9110 field combination).
    joined = ",".join(request.headers.getlist("x-forwarded-for"))
    return [hop.strip() for hop in joined.split(",") if hop.strip()]


def _parse(value: str) -> _Address | None:
    try:
        return ip_address(value)
    except ValueError:
        return None


def _user_id(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    issuer = edge_of(request).services.token_issuer()
    try:
        return str(issuer.verify(token, expected_type=TokenType.ACCESS).user_id)
    except InvalidToken:
        return None
