"""The web chat's files as the app serves them (no browser): where, with which headers, and
nothing but what is shipped. The browser tests beside this one check what the page does."""

from __future__ import annotations

import hashlib
import re
from html.parser import HTMLParser
from importlib.resources import files
from pathlib import Path

import httpx
import pytest

from parley.adapters.inbound.http.web_client import WEB_PACKAGE
from tests.e2e.conftest import AppFactory

pytestmark = pytest.mark.e2e

WEB = Path(str(files(WEB_PACKAGE[0]).joinpath(WEB_PACKAGE[1])))
REQUIRED_DIRECTIVES = (
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "frame-ancestors 'none'",
    "require-trusted-types-for 'script'",
)


class _Page(HTMLParser):
    """What the HTML loads, and any inline script or style it holds."""

    def __init__(self) -> None:
        super().__init__()
        self.loads: list[str] = []
        self.inline: list[str] = []
        self._tag = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self._tag = tag
        if tag in ("script", "link") and (found.get("src") or found.get("href")):
            self.loads.append(str(found.get("src") or found.get("href")))
        if tag == "style" or "style" in found or any(name.startswith("on") for name in found):
            self.inline.append(f"<{tag} {found}>")

    def handle_data(self, data: str) -> None:
        if self._tag == "script" and data.strip():
            self.inline.append(data)

    def handle_endtag(self, tag: str) -> None:
        self._tag = ""


def _shipped() -> list[str]:
    return sorted(str(path.relative_to(WEB)) for path in WEB.rglob("*") if path.is_file())


async def test_the_page_is_served_at_the_root_under_a_strict_policy_and_loads_only_its_own_files(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    policy = response.headers["content-security-policy"]
    for directive in REQUIRED_DIRECTIVES:
        assert directive in policy.split("; "), (directive, policy)
    assert "unsafe-inline" not in policy
    assert "unsafe-eval" not in policy
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    page = _Page()
    page.feed(response.text)
    assert page.inline == []
    assert page.loads, "the page loads its script and style"
    for url in page.loads:
        assert re.fullmatch(r"web/[\w./-]+", url), url  # relative: this app, under any path prefix
        assert (await client.get("/" + url)).status_code == 200, url


async def test_every_shipped_file_is_served_with_its_type_and_the_same_headers(
    client: httpx.AsyncClient,
) -> None:
    types = {".js": "text/javascript", ".mjs": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
    for name in _shipped():
        response = await client.get(f"/web/{name}")
        assert response.status_code == 200, name
        assert response.content == (WEB / name).read_bytes()
        assert response.headers["x-content-type-options"] == "nosniff"
        assert "script-src 'self'" in response.headers["content-security-policy"]
        expected = types.get(Path(name).suffix)
        if expected:
            assert response.headers["content-type"].startswith(expected), (name, response.headers)


async def test_only_shipped_files_are_served(client: httpx.AsyncClient) -> None:
    for path in ("/web/missing.js", "/web/../web_client.py", "/web/%2e%2e/web_client.py", "/web/"):
        assert (await client.get(path)).status_code == 404, path


async def test_the_api_and_its_docs_keep_their_own_headers(client: httpx.AsyncClient) -> None:
    for path in ("/health", "/openapi.json", "/docs"):
        response = await client.get(path)
        assert response.status_code == 200, path
        assert "content-security-policy" not in response.headers, path  # /docs runs inline script


async def test_the_page_is_neither_in_the_schema_nor_rate_limited(start_app: AppFactory) -> None:
    _, client = await start_app(limits={"enabled": True, "default": "2 per hour"})
    for _ in range(4):
        assert (await client.get("/")).status_code == 200
        assert (await client.get("/web/app.js")).status_code == 200
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert not [path for path in paths if path == "/" or path.startswith("/web")]


def test_the_vendored_libraries_are_the_files_their_readme_names() -> None:
    readme = (WEB / "vendor" / "README.md").read_text()
    listed = dict(re.findall(r"\| `([\w.]+\.m?js)` \| `[\w/.]+` \| `([0-9a-f]{64})` \|", readme))
    vendored = {path.name for path in (WEB / "vendor").iterdir() if path.suffix in (".js", ".mjs")}
    assert set(listed) == vendored
    for name, digest in listed.items():
        assert hashlib.sha256((WEB / "vendor" / name).read_bytes()).hexdigest() == digest, name
