"""``/api/v1/users/me``: the caller's own account."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Response, status

from parley.adapters.inbound.http.dependencies import CurrentPrincipal
from parley.adapters.inbound.http.edge import provided
from parley.adapters.inbound.http.rate_limits import RATE_LIMITED
from parley.adapters.inbound.http.responses import bad_request, errors, not_found
from parley.adapters.inbound.http.schemas import (
    ChangeEmailRequest,
    ChangePasswordRequest,
    MemoryOut,
    MemoryPageOut,
    Text,
    UserOut,
)
from parley.application.memory import ForgetAllMemories, ForgetMemory, ListMemories
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
    """Delete the account with its chat sessions, messages, agent memory and long-term memories."""
    await use_case.execute(principal)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/me/memories", responses=errors())
async def list_memories(
    principal: CurrentPrincipal,
    use_case: Annotated[ListMemories, provided(lambda s: s.list_memories)],
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[Text | None, Query(max_length=512)] = None,
) -> MemoryPageOut:
    """What Parley remembers about the caller across chats, newest first; pass `next_cursor` back
    as `cursor`."""
    page = await use_case.execute(principal, limit=limit, cursor=cursor)
    return MemoryPageOut(items=[MemoryOut.of(m) for m in page.items], next_cursor=page.next_cursor)


@router.delete(
    "/me/memories/{memory_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=errors(not_found("Memory not found")),
)
async def forget_memory(
    memory_id: UUID,
    principal: CurrentPrincipal,
    use_case: Annotated[ForgetMemory, provided(lambda s: s.forget_memory)],
) -> Response:
    """Forget one memory."""
    await use_case.execute(principal, memory_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete("/me/memories", status_code=status.HTTP_204_NO_CONTENT, responses=errors())
async def forget_all_memories(
    principal: CurrentPrincipal,
    use_case: Annotated[ForgetAllMemories, provided(lambda s: s.forget_all_memories)],
) -> Response:
    """Forget everything Parley remembers about the caller."""
    await use_case.execute(principal)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
