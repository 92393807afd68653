"""``/api/v1/auth``: register, log in (JSON or OAuth2 form), refresh, log out.

Rate limits: register, log in and refresh take credentials, not a bearer token, so their
budgets are the client address's whatever ``Authorization`` header comes along (see
:mod:`.client_identity`); log out is keyed by its user. Log in also counts each attempt
against the target account's budget (:attr:`AccountLimit.LOGIN`, keyed by the hashed,
normalised e-mail) as soon as the body is read: before the user is looked up or any
password is hashed, and identically for registered and unknown e-mails.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from parley.adapters.inbound.http.audit import auth_attempt, email_digest
from parley.adapters.inbound.http.dependencies import CurrentPrincipal
from parley.adapters.inbound.http.edge import provided
from parley.adapters.inbound.http.errors import unparseable_body
from parley.adapters.inbound.http.rate_limits import (
    RATE_LIMITED,
    AccountLimit,
    RouteLimit,
    enforce_account_limit,
    rate_limit,
)
from parley.adapters.inbound.http.responses import bad_request, errors, unauthorized
from parley.adapters.inbound.http.schemas import (
    LoginForm,
    LoginRequest,
    LogoutRequest,
    RefreshRequest,
    RegisterRequest,
    TokenPairOut,
    UserOut,
)
from parley.application.auth import LogIn, LogInInput, LogOut, RefreshTokens, RegisterInput, RegisterUser
from parley.domain.auth import TokenPair

router = APIRouter(prefix="/api/v1/auth", tags=["auth"], dependencies=[RATE_LIMITED])

_LOGIN_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": LoginRequest.model_json_schema()},
            "application/x-www-form-urlencoded": {"schema": LoginForm.model_json_schema()},
        },
    }
}


def token_pair_out(pair: TokenPair) -> TokenPairOut:
    return TokenPairOut(
        access_token=pair.access_token,
        refresh_token=pair.refresh_token,
        expires_in=pair.access_expires_in,
        refresh_expires_in=pair.refresh_expires_in,
    )


@router.post(
    "/register",
    status_code=status.HTTP_201_CREATED,
    responses=errors(bad_request("Email already registered"), authenticated=False),
)
@rate_limit(RouteLimit.REGISTER)
async def register(
    request: Request,
    body: RegisterRequest,
    use_case: Annotated[RegisterUser, provided(lambda s: s.register_user)],
) -> UserOut:
    """Create an account. Each broken password rule is its own entry in `errors`."""
    async with auth_attempt(request, "register") as attempt:
        attempt.note_email(body.email)
        user = await use_case.execute(RegisterInput(email=body.email, password=body.password))
        attempt.identify(user.id)
    return UserOut.of(user)


@router.post(
    "/login",
    responses=errors(unauthorized("Invalid credentials"), authenticated=False),
    openapi_extra=_LOGIN_BODY,
)
@rate_limit(RouteLimit.LOGIN)
async def login(request: Request, use_case: Annotated[LogIn, provided(lambda s: s.log_in)]) -> TokenPairOut:
    """Log in with JSON `{email, password}` or the OAuth2 password form (`username`, `password`)."""
    async with auth_attempt(request, "login") as attempt:
        credentials = await _read_credentials(request)
        attempt.note_email(credentials.email)
        await enforce_account_limit(request, AccountLimit.LOGIN, email_digest(credentials.email))
        user, pair = await use_case.execute(credentials)
        attempt.identify(user.id)
    return token_pair_out(pair)


@router.post("/refresh", responses=errors(unauthorized("Not authenticated"), authenticated=False))
async def refresh(
    request: Request,
    body: RefreshRequest,
    use_case: Annotated[RefreshTokens, provided(lambda s: s.refresh_tokens)],
) -> TokenPairOut:
    """Exchange a refresh token (once) for a new pair; a reused one revokes the whole login."""
    async with auth_attempt(request, "refresh") as attempt:
        refreshed = await use_case.execute(body.refresh_token)
        attempt.identify(refreshed.user_id)
    return token_pair_out(refreshed.tokens)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT, responses=errors())
async def logout(
    request: Request,
    principal: CurrentPrincipal,
    use_case: Annotated[LogOut, provided(lambda s: s.log_out)],
    body: LogoutRequest | None = None,
) -> Response:
    """End this login: its access and refresh tokens stop working."""
    async with auth_attempt(request, "logout") as attempt:
        attempt.identify(principal.user_id)
        await use_case.execute(principal, body.refresh_token if body else None)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


async def _read_credentials(request: Request) -> LogInInput:
    """The credentials of a login body, JSON or form; any unreadable body is a 422 on ``body``."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type in {"application/x-www-form-urlencoded", "multipart/form-data"}:
        try:
            form = await request.form()
        except StarletteHTTPException as malformed:  # Starlette's 400 for a malformed form
            raise unparseable_body(malformed.__context__ or malformed) from None
        parsed = _parse(LoginForm, {key: value for key, value in form.items() if isinstance(value, str)})
        assert isinstance(parsed, LoginForm)
        return LogInInput(email=parsed.username, password=parsed.password)
    try:
        payload = await request.json()
    except (ValueError, RecursionError) as unreadable:  # not JSON or UTF-8, too deep, too many digits
        raise unparseable_body(unreadable) from None
    parsed_json = _parse(LoginRequest, payload)
    assert isinstance(parsed_json, LoginRequest)
    return LogInInput(email=parsed_json.email, password=parsed_json.password)


def _parse(model: type[BaseModel], payload: Any) -> BaseModel:
    try:
        return model.model_validate(payload)
    except ValidationError as invalid:
        located = [{**error, "loc": ("body", *error["loc"])} for error in invalid.errors()]
        raise RequestValidationError(located) from None
