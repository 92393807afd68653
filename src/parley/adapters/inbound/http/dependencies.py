"""FastAPI dependencies: use cases from the app's container, and the bearer principal.

The container is reached through ``request.app.state.container`` (set by
``create_app``), so this layer never imports it: it only names use-case attributes.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer

from parley.adapters.inbound.http.audit import auth_attempt
from parley.adapters.inbound.http.client_identity import authenticates
from parley.application.accounts import Authenticate
from parley.application.principal import Principal
from parley.domain.errors import NotAuthenticated

LOGIN_PATH = "/api/v1/auth/login"
_bearer = OAuth2PasswordBearer(tokenUrl=LOGIN_PATH, auto_error=False)


def from_container(attribute: str) -> Any:
    """A dependency returning a fresh object from the container's ``attribute`` provider."""

    # async on purpose: FastAPI runs plain ``def`` dependencies in a worker thread,
    # a thread hop per request for what is a dictionary lookup and a constructor call.
    async def provide(request: Request) -> Any:
        return getattr(request.app.state.container, attribute)()

    provide.__name__ = f"provide_{attribute}"
    return Depends(provide)


@authenticates  # routes that depend on it are rate limited per user, not per address
async def current_principal(
    request: Request,
    token: Annotated[str | None, Depends(_bearer)],
    authenticate: Annotated[Authenticate, from_container("authenticate")],
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
