"""``/api/v1/users/me``: the caller's own account."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Response, status

from parley.adapters.inbound.http.dependencies import CurrentPrincipal
from parley.adapters.inbound.http.edge import provided
from parley.adapters.inbound.http.rate_limits import RATE_LIMITED
from parley.adapters.inbound.http.responses import bad_request, errors
from parley.adapters.inbound.http.schemas import ChangeEmailRequest, ChangePasswordRequest, UserOut
from parley.application.users import (
    ChangeEmail,
    ChangeEmailInput,
    ChangePassword,
    ChangePasswordInput,
    DeleteAccount,
    GetProfile,
)

router = APIRouter(prefix="/api/v1/users", tags=["users"], dependencies=[RATE_LIMITED])


@router.get("/me", responses=errors())
async def get_me(
    principal: CurrentPrincipal, use_case: Annotated[GetProfile, provided(lambda s: s.get_profile)]
) -> UserOut:
    """The caller's account."""
    return UserOut.of(await use_case.execute(principal))


@router.patch("/me", responses=errors(bad_request("Current password is incorrect")))
async def change_email(
    body: ChangeEmailRequest,
    principal: CurrentPrincipal,
    use_case: Annotated[ChangeEmail, provided(lambda s: s.change_email)],
) -> UserOut:
    """Change the e-mail address; requires the current password."""
    data = ChangeEmailInput(email=body.email, current_password=body.current_password)
    return UserOut.of(await use_case.execute(principal, data))


@router.post(
    "/me/password",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=errors(bad_request("Current password is incorrect")),
)
async def change_password(
    body: ChangePasswordRequest,
    principal: CurrentPrincipal,
    use_case: Annotated[ChangePassword, provided(lambda s: s.change_password)],
) -> Response:
    """Change the password; every other login of the user is revoked."""
    data = ChangePasswordInput(current_password=body.current_password, new_password=body.new_password)
    await use_case.execute(principal, data)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete("/me", status_code=status.HTTP_204_NO_CONTENT, responses=errors())
async def delete_me(
    principal: CurrentPrincipal, use_case: Annotated[DeleteAccount, provided(lambda s: s.delete_account)]
) -> Response:
    """Delete the account with its chat sessions, messages and agent memory."""
    await use_case.execute(principal)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
