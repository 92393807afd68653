"""Browser tests of the web chat: a real ``parley serve`` on 127.0.0.1 and headless Chromium.

The browser is the machine's own Chromium (Debian's ``chromium``; ``.ci/run`` installs it
when absent), driven by Playwright for Python through ``executable_path``: Playwright's own
browser download is never used. Where no Chromium is found, these tests skip and say why.

Each module starts its server and one browser, and holds one test: pytest-xdist spreads a
module's tests over its workers (its ``loadgroup`` mode does not work with pytest 9), and each
would start a server and a browser of its own. A test's phases each open a fresh browser
context (no shared storage), whose page errors and Content-Security-Policy violations fail the
test: the client must run under its own CSP without a complaint.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect

from tests.e2e.conftest import PASSWORD, TEST_SECRET

# A busy 2-core machine: wait for conditions, generously.
WAIT_MS = 30_000
expect.set_options(timeout=WAIT_MS)

CHROMIUM_CANDIDATES = ("chromium", "chromium-browser")
NO_BROWSER = (
    "no Chromium found (PARLEY_CHROMIUM, or `chromium` on PATH): install Debian's package "
    "(`apt-get install -y chromium`, which .ci/run does when apt-get is there) to run the browser tests"
)

# Recorded in every page before its own scripts run.
WATCH_PAGE = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation',
  (e) => window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`));
"""


def chromium_executable() -> str | None:
    """The machine's Chromium: ``PARLEY_CHROMIUM`` if set, else the first on ``PATH``."""
    explicit = os.environ.get("PARLEY_CHROMIUM")
    if explicit:
        return explicit
    for name in CHROMIUM_CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    executable = chromium_executable()
    if executable is None:
        pytest.skip(NO_BROWSER)
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=executable, timeout=WAIT_MS * 2)
        yield launched
        await launched.close()


@dataclass
class Tab:
    """A page in a fresh context, with what went wrong in it."""

    context: BrowserContext
    page: Page
    errors: list[str] = field(default_factory=list)

    async def csp_violations(self) -> list[str]:
        violations: list[str] = await self.page.evaluate("window.__cspViolations || []")
        return violations


@contextlib.asynccontextmanager
async def open_tab(browser: Browser, *, width: int = 1200, height: int = 760) -> AsyncIterator[Tab]:
    """A page in a fresh context (no shared storage); on leaving, an uncaught page error or a
    CSP violation in it fails the test."""
    context = await browser.new_context(viewport={"width": width, "height": height})
    context.set_default_timeout(WAIT_MS)
    await context.add_init_script(WATCH_PAGE)
    page = await context.new_page()
    opened = Tab(context, page)
    page.on("pageerror", lambda error: opened.errors.append(str(error)))
    try:
        yield opened
        violations = await opened.csp_violations()
    finally:
        await context.close()
    assert opened.errors == [], opened.errors
    assert violations == [], violations


# ---------------------------------------------------------------- live servers


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class LiveServer:
    """``parley serve`` in a process of its own."""

    base_url: str
    process: subprocess.Popen[bytes]
    log: Path

    def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise AssertionError(f"the server exited during start-up:\n{self.log.read_text()[-3000:]}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.base_url}/health", timeout=2).status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise AssertionError(f"the server did not start in time:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.2)  # polling a condition (the health answer), not waiting for one

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)


def require_chromium() -> None:
    """Skip (saying why) where there is no Chromium: before any server is started for nothing."""
    if chromium_executable() is None:
        pytest.skip(NO_BROWSER)


@contextlib.contextmanager
def live_server(
    database_url: str, folder: Path, *, while_starting: Callable[[], object] = lambda: None, **env: str
) -> Iterator[LiveServer]:
    """Start ``parley serve`` on a free port of 127.0.0.1 against ``database_url`` (migrated),
    with the offline model; yield it once ``/health`` answers; kill it at the end.

    ``while_starting`` runs while the server starts (it takes seconds: the browser's launch
    overlaps it)."""
    folder.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    environment = {
        **os.environ,
        "APP_ENV": "development",
        "POSTGRES_URL": database_url,
        "JWT_SECRET_KEY": TEST_SECRET,
        "DATA_DIR": str(folder / "data"),
        "MIGRATE_ON_START": "false",
        "BCRYPT_ROUNDS": "4",
        "LOG_LEVEL": "WARNING",
        "LLM_API_KEY": "",  # the offline model, whatever the machine's environment says
        **env,
    }
    log = folder / "server.log"
    with log.open("wb") as output:
        command = [sys.executable, "-m", "parley.cli", "serve", "--port", str(port)]
        process = subprocess.Popen(command, env=environment, cwd=folder, stdout=output, stderr=output)
    server = LiveServer(f"http://127.0.0.1:{port}", process, log)
    try:
        while_starting()
        server.wait_ready()
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def module_server(request: pytest.FixtureRequest, name: str, **env: str) -> Iterator[LiveServer]:
    """A browser-test module's server (its ``server`` fixture): skipped, saying why, without
    Chromium; else ``parley serve`` on the e2e database with ``env``, started while the module's
    browser launches."""
    require_chromium()
    folder = request.getfixturevalue("tmp_path_factory").mktemp(name)
    with live_server(
        request.getfixturevalue("e2e_database_url"),
        folder,
        while_starting=lambda: request.getfixturevalue("browser"),
        **env,
    ) as started:
        yield started


# ---------------------------------------------------------------- helpers for tests


def new_email(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.com"


async def register_user(base_url: str, email: str, *, client_address: str | None = None) -> None:
    """Register through the API; ``client_address`` (X-Forwarded-For, believed when the server
    trusts 127.0.0.1) gives the sign-up a rate-limit budget of its own."""
    headers = {"X-Forwarded-For": client_address} if client_address else {}
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        response = await client.post(
            "/api/v1/auth/register", json={"email": email, "password": PASSWORD}, headers=headers
        )
        assert response.status_code == 201, response.text


async def log_in_through_the_page(page: Page, base_url: str, email: str) -> None:
    await page.goto(base_url + "/")
    await page.locator("#email").fill(email)
    await page.locator("#password").fill(PASSWORD)
    await page.locator("#auth-submit").click()
    await expect(page.locator("#chat-view")).to_be_visible()
    await expect(page.locator("#composer-input")).to_be_enabled()
    await expect(page.locator("#history-status")).not_to_have_text("Loading…")  # the page is idle


async def stored_tokens(page: Page) -> dict[str, Any]:
    """The tokens the page keeps (sessionStorage), as the client wrote them."""
    raw: str | None = await page.evaluate("sessionStorage.getItem('parley.auth')")
    assert raw is not None, "the page keeps no tokens"
    tokens: dict[str, Any] = json.loads(raw)
    return tokens


def jwt_expiry(token: str) -> float:
    """The ``exp`` claim of a JWT (read, not verified)."""
    payload = token.split(".")[1]
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return float(claims["exp"])
