"""Tripwires: the framework behaviour that turns an unparseable body into Parley's 422.

``adapters/inbound/http/errors.py`` recognises a body that could not be read by what
FastAPI and Starlette raise for it (a 400 ``HTTPException`` with a known detail, chained
from the cause; or raised while handling a ``MultiPartException``) and by CPython's
message for an integer with too many digits. If an upgrade changes any of these, these
tests fail here, by name, instead of clients quietly getting 400s or vaguer messages.

The app below is a bare FastAPI app with one JSON route, one form route and a handler
that records the exception, so what is observed is the framework's own behaviour.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated

import httpx
import pytest
from fastapi import FastAPI, Form, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.formparsers import MultiPartException

from parley.adapters.inbound.http.errors import FASTAPI_UNPARSEABLE_BODY, unparseable_body

pytestmark = pytest.mark.unit


class _Body(BaseModel):
    text: str


@pytest.fixture
async def seen() -> AsyncIterator[tuple[httpx.AsyncClient, list[StarletteHTTPException]]]:
    """A client of a bare FastAPI app, and the ``HTTPException`` objects its handler received."""
    app = FastAPI()
    raised: list[StarletteHTTPException] = []

    @app.post("/json")
    async def take_json(body: _Body) -> str:
        return body.text

    @app.post("/form")
    async def take_form(text: Annotated[str, Form()]) -> str:
        return text

    async def record(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        raised.append(exc)
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)

    app.add_exception_handler(StarletteHTTPException, record)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client, raised


@pytest.mark.parametrize(
    ("content", "cause"),
    [
        (b'{"text": "\xff"}', UnicodeDecodeError),
        (b"[" * 100_000 + b"]" * 100_000, RecursionError),
        (b'{"text": ' + b"9" * 5000 + b"}", ValueError),
    ],
)
async def test_fastapi_answers_an_unreadable_json_body_with_its_400_chained_from_the_cause(
    seen: tuple[httpx.AsyncClient, list[StarletteHTTPException]], content: bytes, cause: type[Exception]
) -> None:
    client, raised = seen

    response = await client.post("/json", content=content, headers={"Content-Type": "application/json"})

    assert response.status_code == 400
    assert [exc.detail for exc in raised] == [FASTAPI_UNPARSEABLE_BODY]
    assert isinstance(raised[0].__cause__, cause)


async def test_starlette_answers_a_malformed_form_with_a_400_raised_from_a_multipart_exception(
    seen: tuple[httpx.AsyncClient, list[StarletteHTTPException]],
) -> None:
    client, raised = seen

    response = await client.post("/form", content=b"x", headers={"Content-Type": "multipart/form-data"})

    assert response.status_code == 400
    assert len(raised) == 1
    assert isinstance(raised[0].__context__, MultiPartException)


def test_cpython_names_the_integer_digit_limit_in_its_message() -> None:
    with pytest.raises(ValueError, match="integer string conversion") as refused:
        json.loads("9" * 5000)

    assert (
        unparseable_body(refused.value).errors()[0]["msg"] == "Request body has a number with too many digits"
    )
