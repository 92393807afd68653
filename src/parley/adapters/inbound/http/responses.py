"""OpenAPI ``responses=`` fragments documenting the error table per route."""

from __future__ import annotations

from typing import Any

from parley.adapters.inbound.http.schemas import ErrorOut, ValidationErrorOut

Responses = dict[int | str, dict[str, Any]]


def _error(description: str, example: str) -> dict[str, Any]:
    """One documented error response with its example body."""
    return {
        "model": ErrorOut,
        "description": description,
        "content": {"application/json": {"example": {"detail": example}}},
    }


VALIDATION: Responses = {
    422: {"model": ValidationErrorOut, "description": "Invalid body, query or path value"}
}
UNAUTHENTICATED: Responses = {
    401: _error("Missing, malformed, expired or revoked token", "Not authenticated")
}
UNAVAILABLE: Responses = {503: _error("The database is unreachable", "Service unavailable")}
TOO_LARGE: Responses = {413: _error("Body larger than the configured maximum", "Request body too large")}
TIMED_OUT: Responses = {
    408: _error("The body stopped arriving for longer than the configured pause", "Request timeout")
}
RATE_LIMITED: Responses = {429: _error("Rate limit exceeded", "Rate limit exceeded: 30 per 1 minute")}


def errors(*extra: Responses, authenticated: bool = True) -> Responses:
    """The common error responses of a route, plus route-specific ones."""
    merged: Responses = {**VALIDATION, **UNAVAILABLE, **TOO_LARGE, **TIMED_OUT, **RATE_LIMITED}
    if authenticated:
        merged.update(UNAUTHENTICATED)
    for fragment in extra:
        merged.update(fragment)
    return merged


def bad_request(example: str) -> Responses:
    return {400: _error("A business rule refused the request", example)}


def not_found(example: str) -> Responses:
    return {404: _error("Does not exist, or belongs to another user", example)}


def unauthorized(example: str) -> Responses:
    return {401: _error("Authentication failed", example)}
