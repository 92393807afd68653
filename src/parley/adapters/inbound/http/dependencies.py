"""The bearer principal: who is calling, from ``Authorization: Bearer <access token>``.

Use cases come from :func:`parley.adapters.inbound.http.edge.provided`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer

from parley.adapters.inbound.http.audit import auth_attempt
from parley.adapters.inbound.http.client_identity import authenticates
from parley.adapters.inbound.http.edge import provided
from parley.application.auth import Authenticate
from parley.application.principal import Principal
from parley.domain.errors import NotAuthenticated

LOGIN_PATH = "/api/v1/auth/login"
_bearer = OAuth2PasswordBearer(tokenUrl=LOGIN_PATH, auto_error=False)


@authenticates  # routes that depend on it are rate limited per user, not per address
async def current_principal(
    request: Request,
    token: Annotated[str | None, Depends(_bearer)],
    authenticate: Annotated[Authenticate, provided(lambda s: s.authenticate)],
) -> Principal:
    """The caller behind ``Authorization: Bearer <access token>`` (401 otherwise).

    Failures are audited (``bearer``); successes only counted, as every request has one.
    Once known, the user id tags every later log line of the request.
    """
    async with auth_attempt(request, "bearer", log_success=False) as attempt:
        if not token:
            raise NotAuthenticated()
        principal = await authenticate.execute(token)
        attempt.identify(principal.user_id)
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
