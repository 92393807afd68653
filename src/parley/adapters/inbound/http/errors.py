"""The one table from error class to HTTP answer, and the handlers that apply it.

Nothing below this layer raises ``HTTPException``; the core raises typed errors
and this module maps each class once. Unknown exceptions become the fixed 500
body, with the traceback in the log only.

A body that cannot be parsed at all (not JSON, not UTF-8, nested too deeply, a number
with too many digits, a malformed form) is a client mistake like any other invalid input:
422 with ``{"field": "body"}`` (API.md), wherever it is noticed: :func:`unparseable_body`
builds that error, and the ``HTTPException`` handler turns FastAPI's and Starlette's 400
for such a body into it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from loguru import logger
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.formparsers import MultiPartException

from parley.adapters.inbound.http.json_response import NewlineJSONResponse
from parley.adapters.inbound.http.rate_limits import RateLimited
from parley.domain.errors import (
    ApprovalExpired,
    ApprovalPending,
    ConversationNotFound,
    CurrentPasswordIncorrect,
    DomainError,
    EmailAlreadyRegistered,
    FieldProblem,
    HistoryCleared,
    InvalidCredentials,
    NotAuthenticated,
    NotFound,
    ReplyInProgress,
    ValidationFailed,
)
from parley.ports.agent import AgentTimeout, AgentUnavailable
from parley.ports.persistence import StorageBusy, StorageUnavailable

BEARER_CHALLENGE = {"WWW-Authenticate": "Bearer"}
INTERNAL_ERROR = "Internal server error"
REQUEST_TIMEOUT = "Request timeout"
SERVICE_UNAVAILABLE = "Service unavailable"
MODEL_UNAVAILABLE = "The language model is unavailable"
# Overloaded (every database connection busy for POSTGRES_POOL_TIMEOUT): when to try again.
BUSY_RETRY_AFTER_SECONDS = 5
BUSY_HEADERS = {"Retry-After": str(BUSY_RETRY_AFTER_SECONDS)}
FASTAPI_UNPARSEABLE_BODY = "There was an error parsing the body"
"""The detail of the 400 that FastAPI raises, chained from the cause, when reading a body fails
other than by a JSON syntax error (``fastapi.routing``; a tripwire test watches it)."""


class ServerShuttingDown(Exception):
    """The server is stopping and a reply could not be finished within its drain time."""

    detail = "The server is shutting down"


@dataclass(frozen=True, slots=True)
class ErrorAnswer:
    status: int
    detail: str | None = None  # None: use the exception's own ``detail``
    headers: Mapping[str, str] = field(default_factory=dict)


ERROR_TABLE: Mapping[type[Exception], ErrorAnswer] = {
    InvalidCredentials: ErrorAnswer(401, headers=BEARER_CHALLENGE),
    NotAuthenticated: ErrorAnswer(401, headers=BEARER_CHALLENGE),
    EmailAlreadyRegistered: ErrorAnswer(400),
    CurrentPasswordIncorrect: ErrorAnswer(400),
    ConversationNotFound: ErrorAnswer(404, "Session not found"),
    NotFound: ErrorAnswer(404),
    ReplyInProgress: ErrorAnswer(409, "A reply is already being generated for this session"),
    ApprovalPending: ErrorAnswer(409, "A tool call in this session is awaiting approval"),
    ApprovalExpired: ErrorAnswer(410),
    HistoryCleared: ErrorAnswer(409, "The session's history was cleared while the reply was being generated"),
    RateLimited: ErrorAnswer(429),  # detail "Rate limit exceeded: ..." and Retry-After from the error
    StorageBusy: ErrorAnswer(503, SERVICE_UNAVAILABLE, headers=BUSY_HEADERS),
    ServerShuttingDown: ErrorAnswer(503),
    StorageUnavailable: ErrorAnswer(503, SERVICE_UNAVAILABLE),
    AgentUnavailable: ErrorAnswer(502, MODEL_UNAVAILABLE),
    AgentTimeout: ErrorAnswer(504, MODEL_UNAVAILABLE),
    DomainError: ErrorAnswer(400),
}


def answer_for(exc: BaseException) -> ErrorAnswer | None:
    """The table entry of the most specific class of ``exc`` (None: an unexpected error)."""
    for cls in type(exc).__mro__:
        if cls in ERROR_TABLE:
            return ERROR_TABLE[cls]
    return None


def error_body(exc: BaseException) -> tuple[int, dict[str, Any], Mapping[str, str]]:
    """Status, JSON body and headers for any exception (used by the SSE stream too)."""
    if isinstance(exc, ValidationFailed):
        return 422, validation_body(exc.problems), {}
    answer = answer_for(exc)
    if answer is None:
        return 500, {"detail": INTERNAL_ERROR}, {}
    detail = answer.detail or getattr(exc, "detail", None) or INTERNAL_ERROR
    # An error may carry headers of its own (a rate limit's Retry-After).
    return answer.status, {"detail": detail}, {**answer.headers, **getattr(exc, "headers", {})}


def validation_body(problems: Iterable[FieldProblem]) -> dict[str, Any]:
    return {
        "detail": "Validation error",
        "errors": [{"field": p.field, "message": p.message} for p in problems],
    }


def problems_from_pydantic(errors: Sequence[Any]) -> list[FieldProblem]:
    """Turn FastAPI/pydantic error dicts into ``{field, message}`` problems.

    ``field`` is the dotted location without its source (``body``/``query``/
    ``path``), or ``body`` itself when the body as a whole is missing or unparseable.
    """
    problems = []
    for error in errors:
        location = [str(part) for part in error.get("loc", ())]
        if location and location[0] in {"body", "query", "path", "header", "cookie"}:
            location = location[1:]
        if error.get("type") == "json_invalid" or not location:
            location = ["body"]
        message = str(error.get("msg", "Invalid value")).removeprefix("Value error, ")
        if error.get("type") == "json_invalid":
            message = "Request body is not valid JSON"
        problems.append(FieldProblem(".".join(location), message))
    return problems


def unparseable_body(cause: BaseException) -> RequestValidationError:
    """The 422 ``field: "body"`` error for a body that could not be parsed.

    The message names the kind of failure; the exception's own text never reaches the client.
    """
    return RequestValidationError([{"type": "body_unparseable", "loc": ("body",), "msg": _why(cause)}])


def _why(cause: BaseException) -> str:
    if isinstance(cause, UnicodeDecodeError):
        return "Request body is not valid UTF-8"
    if isinstance(cause, RecursionError):
        return "Request body is nested too deeply"
    if isinstance(cause, MultiPartException):
        return "Request body is not a valid form"
    if isinstance(cause, ValueError) and "integer string conversion" in str(cause):
        return "Request body has a number with too many digits"
    if isinstance(cause, ValueError):  # json.JSONDecodeError among them
        return "Request body is not valid JSON"
    return "Request body could not be parsed"


def _body_parsing_failure(exc: StarletteHTTPException) -> BaseException | None:
    """What went wrong when ``exc`` is the 400 of a body that could not be read, else None.

    FastAPI raises ``HTTPException(400, FASTAPI_UNPARSEABLE_BODY) from cause``; Starlette's
    form parser raises ``HTTPException(400, ...)`` while handling a ``MultiPartException``.
    """
    if exc.status_code != 400:
        return None
    if exc.detail == FASTAPI_UNPARSEABLE_BODY:
        return exc.__cause__ or exc
    if isinstance(exc.__context__, MultiPartException):
        return exc.__context__
    return None


async def _on_request_validation(_: Request, exc: Exception) -> NewlineJSONResponse:
    assert isinstance(exc, RequestValidationError)
    return NewlineJSONResponse(validation_body(problems_from_pydantic(exc.errors())), status_code=422)


async def _on_http_exception(request: Request, exc: Exception) -> NewlineJSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    failure = _body_parsing_failure(exc)
    if failure is not None:
        return await _on_request_validation(request, unparseable_body(failure))
    detail = exc.detail if isinstance(exc.detail, str) else "Request failed"
    return NewlineJSONResponse({"detail": detail}, status_code=exc.status_code, headers=exc.headers)


async def _on_known_error(request: Request, exc: Exception) -> NewlineJSONResponse:
    status, body, headers = error_body(exc)
    if status >= 500:
        logger.bind(path=request.url.path).warning("Request failed: {} ({})", type(exc).__name__, status)
    return NewlineJSONResponse(body, status_code=status, headers=dict(headers))


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _on_request_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http_exception)
    app.add_exception_handler(ValidationFailed, _on_known_error)
    for error_class in ERROR_TABLE:
        app.add_exception_handler(error_class, _on_known_error)
