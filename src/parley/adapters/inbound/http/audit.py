"""The authentication audit: one log line and one counter sample per attempt.

Each register, login, refresh, logout and failed bearer authentication is logged
with its action, outcome, client address and who it was about: the user id when
known, else a hashed e-mail (:func:`email_digest`). Never the e-mail itself, a
password, a token or a hash.

Usage in a route::

    async with auth_attempt(request, "login") as attempt:
        attempt.note_email(credentials.email)
        user, pair = await use_case.execute(credentials)
        attempt.identify(user.id)

The outcome is ``success`` when the block ends normally, else the class of the
exception (which is re-raised untouched for the error handlers).
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Literal
from uuid import UUID

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from loguru import logger
from starlette.requests import ClientDisconnect

from parley.adapters.inbound.http.edge import edge_of
from parley.adapters.inbound.http.middleware import BodyRefused
from parley.adapters.inbound.http.rate_limits import RateLimited
from parley.domain.errors import (
    EmailAlreadyRegistered,
    InvalidCredentials,
    NotAuthenticated,
    RefreshTokenReused,
    ValidationFailed,
)
from parley.domain.users import normalise_email
from parley.log_setup import current_user_id
from parley.ports.persistence import StorageUnavailable

AuthAction = Literal["register", "login", "refresh", "logout", "bearer"]
SUCCESS = "success"
EMAIL_DIGEST_CHARS = 16

_OUTCOMES: tuple[tuple[type[Exception], str], ...] = (
    (RefreshTokenReused, "token_reused"),  # before NotAuthenticated, its base
    (InvalidCredentials, "invalid_credentials"),
    (EmailAlreadyRegistered, "email_taken"),
    (NotAuthenticated, "invalid_token"),
    (ValidationFailed, "invalid_input"),
    (RequestValidationError, "invalid_input"),
    (StorageUnavailable, "unavailable"),
    (RateLimited, "rate_limited"),  # a budget checked inside the attempt (one account's logins)
    # The body never arrived whole: the client left, or a size/time limit refused it.
    (ClientDisconnect, "client_left"),
    (BodyRefused, "body_refused"),
)


def email_digest(email: str) -> str:
    """A stable pseudonym for an e-mail address: a prefix of the SHA-256 of its normalised form.

    Lets an operator correlate attempts on one address (and check a suspected address by
    hashing it) without the log holding the address. The normalisation is the domain's
    (:func:`normalise_email`), so every spelling the domain takes for one address (case,
    full-width letters, surrounding spaces) has one digest, valid or not.
    """
    normalised = normalise_email(email).encode("utf-8", "replace")  # "replace": lone surrogates
    return hashlib.sha256(normalised).hexdigest()[:EMAIL_DIGEST_CHARS]


def outcome_of(error: Exception) -> str:
    """The outcome label of a failed attempt (``error`` for anything unexpected)."""
    for error_class, outcome in _OUTCOMES:
        if isinstance(error, error_class):
            return outcome
    return "error"


class AuthAttempt:
    """What is known about one attempt so far; filled in by the route."""

    def __init__(self, action: AuthAction) -> None:
        self.action = action
        self.user_id: str | None = None
        self.email_hash: str | None = None

    def note_email(self, email: str) -> None:
        """Record which address was tried; only its digest is kept."""
        self.email_hash = email_digest(email)

    def identify(self, user_id: UUID | str) -> None:
        """Name the user; every later log line of this request carries the id too."""
        self.user_id = str(user_id)
        current_user_id.set(self.user_id)


@asynccontextmanager
async def auth_attempt(
    request: Request, action: AuthAction, *, log_success: bool = True
) -> AsyncIterator[AuthAttempt]:
    """Audit the block as one ``action`` attempt (see the module docstring)."""
    attempt = AuthAttempt(action)
    try:
        yield attempt
    except Exception as error:
        if isinstance(error, RefreshTokenReused):
            attempt.identify(error.user_id)  # whose login was just revoked: a likely theft
        _record(request, attempt, outcome_of(error), log=True)
        raise
    _record(request, attempt, SUCCESS, log=log_success)


def _record(request: Request, attempt: AuthAttempt, outcome: str, *, log: bool) -> None:
    edge_of(request).metrics.auth_attempts.labels(attempt.action, outcome).inc()
    if not log:
        return
    fields = {"action": attempt.action, "outcome": outcome}
    if attempt.email_hash is not None:
        fields["email_hash"] = attempt.email_hash
    if attempt.user_id is not None:
        fields["user_id"] = attempt.user_id
    client = request.client.host if request.client else None
    level = "INFO" if outcome == SUCCESS else "WARNING"
    logger.bind(audit="auth", client=client, **fields).log(level, "auth {} {}", attempt.action, outcome)
