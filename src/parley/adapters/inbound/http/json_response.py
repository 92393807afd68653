"""The JSON response class of every body Parley sends (routes, error handlers, middleware)."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse


class NewlineJSONResponse(JSONResponse):
    """Compact UTF-8 JSON, as Starlette renders it, ending with a newline.

    The newline keeps ``curl`` output off the shell prompt; JSON parsers ignore it. Used as
    the app's ``default_response_class``, by the error handlers, by ``/health`` and by the
    pure-ASGI middleware's own 413 and 500 answers, so no JSON body leaves without it.
    """

    def render(self, content: Any) -> bytes:
        return super().render(content) + b"\n"
