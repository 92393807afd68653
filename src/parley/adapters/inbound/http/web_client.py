"""The built-in web chat: a static client served by the app itself at ``/``.

Why here: the first thing a new user wants after ``parley serve`` is to talk to it, with
nothing else to install or build. The client is plain JavaScript modules and CSS shipped
inside this package (``web/``, package data of the wheel), with its two libraries
(``marked``, ``DOMPurify``) vendored and pinned in ``web/vendor/`` (see its README): no
CDN, no Node build, nothing fetched at run time.

- ``GET /`` answers ``web/index.html``; ``GET /web/{name}`` answers the other files.
  Both are routes rather than a ``Mount`` (a mount sets no route in the ASGI scope, so the
  HTTP metrics and access log would call every asset "unmatched"), answered by
  ``StaticFiles`` so browsers revalidate with ``ETag`` / ``Last-Modified`` (304);
- every answer of these routes carries :data:`SECURITY_HEADERS`: a strict
  Content-Security-Policy (scripts, styles and connections from this origin only; no
  inline script or style, no plugins, no ``<base>``, never framed; Trusted Types, so only
  DOMPurify's output can reach an HTML sink), ``nosniff`` and no referrer. They are set on
  the client's pages only: the JSON API is not a page, and ``/docs`` (Swagger UI) needs
  inline script of its own;
- none of these routes is in the OpenAPI schema, needs auth or is rate limited.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

WEB_PACKAGE = ("parley.adapters.inbound.http", "web")
INDEX_PATH = "/"
INDEX_FILE = "index.html"
ASSETS_PATH = "/web"

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "object-src 'none'",
        # Only the policy DOMPurify creates may turn a string into HTML in the page.
        "require-trusted-types-for 'script'",
        "trusted-types dompurify",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",  # frame-ancestors for browsers that predate it
    "Cross-Origin-Opener-Policy": "same-origin",
    # Revalidate every time (cheap: 304 by ETag), so an upgraded server is never mixed with
    # modules a browser cached from the previous version.
    "Cache-Control": "no-cache",
}


def install_web_client(app: FastAPI) -> None:
    """Serve the web chat at ``/`` and its files under ``/web/``.

    Fails at start-up (``RuntimeError`` from ``StaticFiles``) if the package's ``web``
    folder is missing, e.g. from a wheel built without its package data.
    """
    app.include_router(_web_router())


def _web_router() -> APIRouter:
    router = APIRouter(include_in_schema=False)
    files = StaticFiles(packages=[WEB_PACKAGE])

    @router.api_route(INDEX_PATH, methods=["GET", "HEAD"])
    async def web_chat(request: Request) -> Response:
        return _secured(await files.get_response(INDEX_FILE, request.scope))

    @router.api_route(ASSETS_PATH + "/{name:path}", methods=["GET", "HEAD"])
    async def web_asset(name: str, request: Request) -> Response:
        return _secured(await files.get_response(name, request.scope))  # 404 for anything not shipped

    return router


def _secured(response: Response) -> Response:
    response.headers.update(SECURITY_HEADERS)
    return response
