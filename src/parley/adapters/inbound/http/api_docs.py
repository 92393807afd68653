"""``/docs`` (Swagger UI) and ``/redoc`` that work with no internet.

Why: FastAPI's own pages load Swagger UI and ReDoc from a CDN (jsdelivr) and the favicon
from fastapi.tiangolo.com, so on an offline or air-gapped host they are blank. Here the
same pages, built by FastAPI's own ``get_swagger_ui_html`` / ``get_redoc_html`` /
``get_swagger_ui_oauth2_redirect_html``, load their assets from this app:

- the assets are the static files of the pinned ``fastapi-offline`` wheel (Swagger UI 5,
  ReDoc 2 and FastAPI's favicon), answered under :data:`ASSETS_PATH` by ``StaticFiles``,
  so browsers cache them and revalidate with ``ETag`` / ``Last-Modified`` (304). Only the
  package's files are used, not its ``FastAPIOffline`` app factory;
- through a route (``/docs/assets/{name}``) rather than a ``Mount``: a mount sets no route
  in the ASGI scope, so the HTTP metrics and access log would call every asset "unmatched";
- ReDoc goes without Google Fonts and Swagger UI without its online validator
  (validator.swagger.io), so nothing leaves for the internet;
- the Authorize button still works: Swagger posts the OAuth2 password form to the login
  route and gets the token back through the app's ``swagger_ui_oauth2_redirect_url``
  (``/docs/oauth2-redirect``), served here;
- none of these routes is in the OpenAPI schema, needs auth or is rate limited (no
  ``RATE_LIMITED`` dependency); URLs honour the ASGI ``root_path``, as FastAPI's do.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

DOCS_PATH = "/docs"
REDOC_PATH = "/redoc"
ASSETS_PATH = "/docs/assets"
ASSETS_PACKAGE = ("fastapi_offline", "static")  # swagger-ui-bundle.js, swagger-ui.css, redoc.standalone.js
OFFLINE_SWAGGER_UI_PARAMETERS: dict[str, Any] = {"validatorUrl": None}  # no spec sent to swagger.io


def install_api_docs(app: FastAPI) -> None:
    """Serve the docs pages and their assets on ``app``.

    ``app`` must be built with ``docs_url=None, redoc_url=None`` (FastAPI's CDN pages off).
    Its title, OpenAPI URL, ``swagger_ui_oauth2_redirect_url`` (``/docs/oauth2-redirect``),
    ``swagger_ui_init_oauth`` and ``swagger_ui_parameters`` are honoured as FastAPI would.
    Raises ``ValueError`` otherwise, or when the app has no OpenAPI schema to show.
    """
    if app.docs_url or app.redoc_url:
        raise ValueError("build the app with docs_url=None, redoc_url=None (FastAPI's CDN pages)")
    if not app.openapi_url:
        raise ValueError("the docs pages need the app's OpenAPI schema (openapi_url)")
    app.include_router(_docs_router(app, app.openapi_url))
    app.include_router(_assets_router())


def _docs_router(app: FastAPI, openapi_url: str) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    redirect_url = app.swagger_ui_oauth2_redirect_url
    parameters = OFFLINE_SWAGGER_UI_PARAMETERS | (app.swagger_ui_parameters or {})

    @router.get(DOCS_PATH)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = _root_path(request)
        return get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_PATH}/favicon.png",
            oauth2_redirect_url=root + redirect_url if redirect_url else None,
            init_oauth=app.swagger_ui_init_oauth,
            swagger_ui_parameters=parameters,
        )

    if redirect_url:

        @router.get(redirect_url)
        async def swagger_ui_oauth2_redirect() -> HTMLResponse:
            return get_swagger_ui_oauth2_redirect_html()

    @router.get(REDOC_PATH)
    async def redoc(request: Request) -> HTMLResponse:
        root = _root_path(request)
        return get_redoc_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{ASSETS_PATH}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{ASSETS_PATH}/favicon.png",
            with_google_fonts=False,
        )

    return router


def _assets_router() -> APIRouter:
    router = APIRouter(include_in_schema=False)
    # Fails here, at start-up, if the package's folder is gone (a tripwire for its layout).
    files = StaticFiles(packages=[ASSETS_PACKAGE])

    @router.api_route(ASSETS_PATH + "/{name}", methods=["GET", "HEAD"])
    async def asset(name: str, request: Request) -> Response:
        return await files.get_response(name, request.scope)  # 404 for anything not shipped

    return router


def _root_path(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")
