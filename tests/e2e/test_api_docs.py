"""``/docs`` and ``/redoc`` work on a host with no internet: every page and every asset it
loads comes from the app itself, the Authorize flow still works, and none of it shows up
in the OpenAPI schema or counts against a rate limit."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import AppFactory

pytestmark = pytest.mark.e2e

SWAGGER = "/docs"
REDOC = "/redoc"
OAUTH2_REDIRECT = "/docs/oauth2-redirect"
PAGES = (SWAGGER, REDOC, OAUTH2_REDIRECT)
# Any URL naming a host: http://, https:// or protocol-relative //host.tld.
HOSTED_URL = re.compile(r"(?:https?:)?//[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
ASSET_TYPES = ("text/javascript", "application/javascript", "text/css", "image/")
NON_TRIVIAL_BYTES = 1024


class _References(HTMLParser):
    """Collects the ``src``/``href`` of every tag and the ``<title>`` text."""

    def __init__(self) -> None:
        super().__init__()
        self.references: list[tuple[str, str]] = []  # (tag, url)
        self.icons: list[str] = []
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        for name in ("src", "href"):
            if found.get(name):
                self.references.append((tag, str(found[name])))
        if tag == "link" and "icon" in (found.get("rel") or "") and found.get("href"):
            self.icons.append(str(found["href"]))
        self._in_title = tag == "title"

    def handle_endtag(self, tag: str) -> None:
        self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data.strip()


def _parse(html: str) -> _References:
    parser = _References()
    parser.feed(html)
    return parser


def _is_local_path(url: str) -> bool:
    return url.startswith("/") and not url.startswith("//")


async def _local_assets(client: httpx.AsyncClient) -> list[str]:
    """The assets ``/docs`` and ``/redoc`` load, checked to be paths on this app."""
    assets: list[str] = []
    for page in (SWAGGER, REDOC):
        references = [url for _, url in _parse((await client.get(page)).text).references]
        assert references, page
        assert all(_is_local_path(url) for url in references), (page, references)
        assets += [url for url in references if url not in assets]
    return assets


async def test_docs_pages_answer_html_that_loads_nothing_from_another_host(
    client: httpx.AsyncClient,
) -> None:
    for page in PAGES:
        response = await client.get(page)

        assert response.status_code == 200, page
        assert response.headers["content-type"].startswith("text/html"), page
        assert HOSTED_URL.findall(response.text) == [], page
        references = _parse(response.text).references
        assert [url for _, url in references if not _is_local_path(url)] == [], page


async def test_every_asset_of_the_docs_pages_is_served_by_the_app(client: httpx.AsyncClient) -> None:
    swagger = _parse((await client.get(SWAGGER)).text)
    redoc = _parse((await client.get(REDOC)).text)
    assert {tag for tag, _ in swagger.references} >= {"script", "link"}  # the bundle and its CSS
    assert "script" in {tag for tag, _ in redoc.references}

    for asset in await _local_assets(client):
        response = await client.get(asset)

        assert response.status_code == 200, asset
        assert response.headers["content-type"].startswith(ASSET_TYPES), (asset, response.headers)
        assert len(response.content) > NON_TRIVIAL_BYTES, asset


async def test_docs_assets_are_cacheable_static_files(client: httpx.AsyncClient) -> None:
    for asset in await _local_assets(client):
        first = await client.get(asset)
        assert first.status_code == 200, asset
        assert first.headers.get("etag"), asset
        assert first.headers.get("last-modified"), asset

        again = await client.get(asset, headers={"If-None-Match": first.headers["etag"]})

        assert again.status_code == 304, asset


async def test_docs_pages_keep_their_titles_favicon_and_the_authorize_flow(
    client: httpx.AsyncClient,
) -> None:
    swagger_html = (await client.get(SWAGGER)).text
    swagger, redoc = _parse(swagger_html), _parse((await client.get(REDOC)).text)
    spec = (await client.get("/openapi.json")).json()

    assert swagger.title == "Parley - Swagger UI"
    assert redoc.title == "Parley - ReDoc"
    for page in (swagger, redoc):
        assert len(page.icons) == 1
        assert _is_local_path(page.icons[0]), page.icons
        icon = await client.get(page.icons[0])
        assert icon.status_code == 200
        assert icon.headers["content-type"] == "image/png"
    # Authorize: the password form goes to the login route, the token comes back through
    # the redirect page, which this app serves.
    assert f"oauth2RedirectUrl: window.location.origin + '{OAUTH2_REDIRECT}'" in swagger_html
    flows = [scheme["flows"] for scheme in spec["components"]["securitySchemes"].values()]
    assert {"password": {"scopes": {}, "tokenUrl": "/api/v1/auth/login"}} in flows
    redirect = await client.get(OAUTH2_REDIRECT)
    assert redirect.status_code == 200
    assert "swaggerUIRedirectOauth2" in redirect.text


async def test_openapi_is_served_without_the_docs_routes(client: httpx.AsyncClient) -> None:
    assets = await _local_assets(client)

    response = await client.get("/openapi.json")

    assert response.status_code == 200
    documented = set(response.json()["paths"])
    assert "/api/v1/auth/login" in documented
    assert documented.isdisjoint({*PAGES, *assets})
    assert not any(path.startswith((SWAGGER, REDOC)) for path in documented)


async def test_docs_pages_and_assets_are_never_rate_limited(start_app: AppFactory) -> None:
    _, client = await start_app(limits={"enabled": True, "default": "1 per minute"})
    paths = [*PAGES, *await _local_assets(client)]

    answers = {path: [(await client.get(path)).status_code for _ in range(3)] for path in paths}

    assert answers == {path: [200, 200, 200] for path in paths}


async def test_docs_assets_outside_the_shipped_files_are_not_found(client: httpx.AsyncClient) -> None:
    asset_folder = (await _local_assets(client))[0].rsplit("/", 1)[0]

    for name in ("nope.js", "..%2F__init__.py", "..%2F..%2Fparley%2Fmain.py", "%2Fetc%2Fpasswd"):
        response = await client.get(f"{asset_folder}/{name}")

        assert response.status_code == 404, name
        assert response.json() == {"detail": "Not Found"}


async def test_docs_asset_requests_are_counted_under_one_route_template(client: httpx.AsyncClient) -> None:
    assets = await _local_assets(client)
    for asset in assets:
        assert (await client.get(asset)).status_code == 200

    metrics = (await client.get("/metrics")).text

    requests = next(f for f in text_string_to_metric_families(metrics) if f.name == "parley_http_requests")
    under_docs = {
        sample.labels["route"]: sample.value
        for sample in requests.samples
        if sample.name.endswith("_total") and sample.labels["route"].startswith(f"{SWAGGER}/")
    }
    under_docs.pop(OAUTH2_REDIRECT, None)
    assert list(under_docs.values()) == [len(assets)]  # one template, not "unmatched" nor raw paths
