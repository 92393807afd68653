"""The web chat in headless Chromium against a live ``parley serve``: signing up and in,
a streamed reply stopped half-way and found again after a reload, hostile Markdown, a
refused access token, a reply already running (409), a phone-width screen in dark mode.

The server runs the offline model slowed to 80 ms a token, so a stream is watched while it
grows; sign-ups are limited to 3 an hour per address, so the fourth attempt meets a 429.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page, Response, expect

from tests.e2e.conftest import PASSWORD
from tests.e2e.web.conftest import (
    LiveServer,
    Tab,
    log_in_through_the_page,
    module_server,
    new_email,
    open_tab,
    register_user,
    stored_tokens,
)

pytestmark = pytest.mark.e2e

SCREENSHOT = Path(__file__).resolve().parents[3] / "docs" / "screenshots" / "chat.png"
# ~100 words: at 80 ms a token the reply takes ~9 s, far longer than watching it grow.
LONG_TEXT = " ".join(["Tell me a long story about a lighthouse keeper who counts the waves every night."] * 7)


@pytest.fixture(scope="module")
def server(request: pytest.FixtureRequest) -> Iterator[LiveServer]:
    with module_server(
        request,
        "web-chat",
        OFFLINE_MODEL_TOKEN_DELAY_MS="80",
        RATE_LIMIT_REGISTER="3 per hour",
        TRUSTED_PROXIES="127.0.0.1",  # the tests' own sign-ups come "from" other addresses
    ) as started:
        yield started


LAST_REPLY = "[...document.querySelectorAll('.message.assistant')].at(-1)"


async def _reply_text_longer_than(page: Page, length: int) -> str:
    """Wait until the reply being streamed shows more than ``length`` characters; its text."""
    await page.wait_for_function(
        f"""(n) => {{
            const reply = {LAST_REPLY};
            const streaming = reply && reply.classList.contains('streaming');
            return streaming && reply.querySelector('.body').innerText.length > n;
        }}""",
        arg=length,
    )
    text: str = await page.evaluate(f"{LAST_REPLY}.querySelector('.body').innerText")
    return text


def _words(text: str) -> str:
    return " ".join(text.split())


async def _stored_messages(page: Page, base_url: str) -> list[dict[str, str]]:
    session_id = (await page.evaluate("location.hash")).lstrip("#")
    token = (await stored_tokens(page))["access"]
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        response = await client.get(
            f"/api/v1/chat/sessions/{session_id}/messages", headers={"Authorization": f"Bearer {token}"}
        )
    assert response.status_code == 200, response.text
    items: list[dict[str, str]] = response.json()["items"]
    return items


async def _stored_incomplete_reply(page: Page, base_url: str) -> str:
    """The stopped reply as the server stored it, once it has (it notices the disconnect)."""
    deadline = time.monotonic() + 30
    while True:
        items = await _stored_messages(page, base_url)
        if items and items[-1]["role"] == "assistant" and items[-1]["status"] == "incomplete":
            return items[-1]["content"]
        assert time.monotonic() < deadline, items[-2:]
        await page.wait_for_timeout(100)  # polling the server's state, not waiting for it


async def _sign_up_with_mistakes_then_log_in(page: Page, email: str) -> None:
    """The auth form: a broken password rule, success, log out, a duplicate, a 429, log in."""
    await page.locator("#tab-register").click()
    await page.locator("#email").fill(email)
    await page.locator("#password").fill("weakpass")
    await page.locator("#auth-submit").click()
    password_errors = page.locator("#password-error")
    for rule in ("uppercase letter", "number", "special character"):
        await expect(password_errors).to_contain_text(rule)
    await expect(page.locator("#password")).to_have_attribute("aria-invalid", "true")
    await expect(page.locator("#email-error")).to_be_empty()

    await page.locator("#password").fill(PASSWORD)
    await page.locator("#auth-submit").click()  # registers, then logs in
    await expect(page.locator("#chat-view")).to_be_visible()
    await expect(page.locator("#user-email")).to_have_text(email)

    await page.locator("#logout").click()
    await expect(page.locator("#auth-error")).to_have_text("You are logged out.")
    assert await page.evaluate("sessionStorage.getItem('parley.auth')") is None

    await page.locator("#tab-register").click()
    await page.locator("#email").fill(email)
    await page.locator("#password").fill(PASSWORD)
    await page.locator("#auth-submit").click()
    await expect(page.locator("#email-error")).to_have_text("Email already registered")
    await page.locator("#auth-submit").click()  # the 4th sign-up from this address this hour
    await expect(page.locator("#auth-error")).to_contain_text("Rate limit exceeded: 3 per 1 hour")
    await expect(page.locator("#auth-error")).to_contain_text(" Try again in ")

    await page.locator("#tab-login").click()
    await page.locator("#password").fill(PASSWORD)
    await page.locator("#auth-submit").click()
    await expect(page.locator("#chat-view")).to_be_visible()


async def _sign_up_log_in_stream_a_reply_stop_it_and_find_it_after_a_reload(
    server: LiveServer, tab: Tab
) -> None:
    page = tab.page
    await page.goto(server.base_url + "/")
    # A fixed address (the module's database is new): the screenshot is then the same from
    # run to run, and git sees no change.
    await _sign_up_with_mistakes_then_log_in(page, "ada@example.com")

    sessions = page.locator("#session-list .session")
    await expect(sessions).to_have_count(1)  # the first visit opened one
    await page.locator("#new-session").click()
    await expect(sessions).to_have_count(2)
    await expect(sessions.first).to_have_class("session current")

    composer = page.locator("#composer-input")
    await composer.fill("What is 17 * 23?")
    await composer.press("Enter")
    replies = page.locator(".message.assistant")
    await expect(replies.last).to_have_attribute("data-status", "complete")
    await expect(replies.last).to_contain_text("[offline model] The calculator tool says: 391")
    await expect(replies.last.locator(".tool summary")).to_have_text("Tool: calculator")
    await expect(page.locator("#offline-badge")).to_be_visible()
    # Named after its first exchange: the done event carries the renamed session.
    await expect(page.locator("#session-title")).to_have_text("What is 17 * 23?")
    await expect(sessions.first.locator(".session-name")).to_have_text("What is 17 * 23?")

    # Shift+Enter is a new line; Enter sends.
    await composer.press_sequentially("Please listen.")
    await composer.press("Shift+Enter")
    await composer.fill(await composer.input_value() + LONG_TEXT)
    await composer.press("Enter")
    await expect(page.locator(".message.user").last.locator(".body br")).to_have_count(1)

    first = await _reply_text_longer_than(page, 40)
    second = await _reply_text_longer_than(page, len(first))
    assert second.startswith(first), (first, second)  # it grew, token by token
    assert len(second) > len(first)

    await page.locator("#stop").click()
    stopped = replies.last
    await expect(stopped).to_have_attribute("data-status", "incomplete")
    await expect(stopped.locator(".status.incomplete")).to_be_visible()
    await expect(page.locator("#send")).to_be_visible()
    await expect(page.locator("#stop")).to_be_hidden()
    shown = _words(await stopped.locator(".body").inner_text())
    assert LONG_TEXT not in shown  # cut short

    stored = _words(await _stored_incomplete_reply(page, server.base_url))
    assert stored.startswith(shown), (stored, shown)  # it may hold a token or two more

    await page.reload()
    await expect(page.locator(".message")).to_have_count(4)
    reloaded = replies.last
    await expect(reloaded).to_have_attribute("data-status", "incomplete")
    await expect(reloaded.locator(".status.incomplete")).to_be_visible()
    assert _words(await reloaded.locator(".body").inner_text()) == stored
    await expect(page.locator(".message.assistant").first).to_contain_text("391")

    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOT))


HOSTILE = (
    'Look: <img src=x onerror="window.__xss = 1"> and <script>window.__xss = 2</script>\n\n'
    '[click me](javascript:window.__xss=3) and <a href="javascript:window.__xss=4">raw link</a> '
    "and [a safe one](https://example.com/docs)\n\n"
    '```python\nprint("hi")\n```'
)


async def _assert_nothing_injected(page: Page) -> None:
    messages = page.locator("#message-list")
    assert await page.evaluate("window.__xss") is None
    await expect(messages.locator("img")).to_have_count(0)
    await expect(messages.locator("script")).to_have_count(0)
    await expect(messages.locator("[onerror]")).to_have_count(0)
    await expect(page.locator('a[href^="javascript:" i]')).to_have_count(0)
    user = page.locator(".message.user").last
    # Raw HTML is shown as the text it is; Markdown still renders.
    await expect(user.locator(".body")).to_contain_text('<img src=x onerror="window.__xss = 1">')
    await expect(user.locator(".body")).to_contain_text('<a href="javascript:window.__xss=4">raw link</a>')
    await expect(user.locator("pre code")).to_have_text('print("hi")\n')
    safe = user.locator('a[href="https://example.com/docs"]')
    await expect(safe).to_have_attribute("rel", "noopener noreferrer nofollow")
    await expect(safe).to_have_attribute("target", "_blank")
    await user.get_by_text("click me").click()  # a link without its URL: nothing happens
    assert await page.evaluate("window.__xss") is None


async def _injected_html_and_javascript_links_are_shown_as_text_and_never_run(
    server: LiveServer, tab: Tab
) -> None:
    page = tab.page
    email = new_email("xss")
    await register_user(server.base_url, email, client_address="10.9.0.1")
    await log_in_through_the_page(page, server.base_url, email)

    await page.locator("#composer-input").fill(HOSTILE)
    await page.locator("#composer-input").press("Enter")
    reply = page.locator(".message.assistant").last
    await expect(reply).to_have_attribute("data-status", "complete", timeout=60_000)
    await expect(reply).to_contain_text("[offline model]")
    await _assert_nothing_injected(page)

    await page.reload()  # the same content, rendered from the stored history
    await expect(page.locator(".message")).to_have_count(2)
    await _assert_nothing_injected(page)


async def _a_refused_access_token_is_refreshed_and_the_request_sent_once_more(
    server: LiveServer, tab: Tab
) -> None:
    page = tab.page
    email = new_email("refused")
    await register_user(server.base_url, email, client_address="10.9.0.2")
    await log_in_through_the_page(page, server.base_url, email)
    answers: list[tuple[str, str, int]] = []

    def record(response: Response) -> None:
        if "/api/v1/" in response.url:
            path = response.url.split("/api/v1/")[1]
            answers.append((response.request.method, path, response.status))

    page.on("response", record)
    # The page believes its access token good for an hour; the server refuses it.
    await page.evaluate(
        """() => {
            const tokens = JSON.parse(sessionStorage.getItem('parley.auth'));
            tokens.access = 'not.a.token';
            tokens.accessExpiresAt = Date.now() + 3600 * 1000;
            sessionStorage.setItem('parley.auth', JSON.stringify(tokens));
        }"""
    )
    sessions = page.locator("#session-list .session")
    await expect(sessions).to_have_count(1)
    await page.locator("#new-session").click()
    await expect(sessions).to_have_count(2)
    await expect(page.locator("#chat-error")).to_be_hidden()

    posts = [answer for answer in answers if answer[0] == "POST"]
    assert posts == [
        ("POST", "chat/sessions", 401),
        ("POST", "auth/refresh", 200),
        ("POST", "chat/sessions", 201),
    ], answers
    assert (await stored_tokens(page))["access"] != "not.a.token"


async def _a_phone_width_screen_in_dark_mode(server: LiveServer, tab: Tab) -> None:
    page = tab.page
    await page.emulate_media(color_scheme="dark")
    email = new_email("phone")
    await register_user(server.base_url, email, client_address="10.9.0.3")
    await log_in_through_the_page(page, server.base_url, email)

    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    background = await page.evaluate("getComputedStyle(document.body).backgroundColor")
    red, green, blue = (int(part) for part in background.removeprefix("rgb(").rstrip(")").split(","))
    assert red + green + blue < 3 * 64, background  # dark

    sidebar = page.locator("#sidebar")
    await expect(sidebar).not_to_be_in_viewport()  # off-canvas until asked for
    await expect(page.locator("#composer-input")).to_be_in_viewport()
    await page.locator("#toggle-sidebar").click()
    await expect(sidebar).to_be_in_viewport(ratio=0.9)
    await page.locator("#session-list .session").first.click()
    await expect(sidebar).not_to_be_in_viewport()


async def _a_reply_already_running_is_shown_plainly(server: LiveServer, tab: Tab) -> None:
    """Another client (here the API) streams a reply in the session: the page's send is a 409."""
    page = tab.page
    email = new_email("busy")
    await register_user(server.base_url, email, client_address="10.9.0.4")
    await log_in_through_the_page(page, server.base_url, email)
    session_id = (await page.evaluate("location.hash")).lstrip("#")
    headers = {"Authorization": f"Bearer {(await stored_tokens(page))['access']}"}
    streaming = asyncio.Event()

    async def stream_elsewhere() -> None:
        url = f"/api/v1/chat/sessions/{session_id}/messages/stream"
        async with (
            httpx.AsyncClient(base_url=server.base_url, timeout=60) as client,
            client.stream("POST", url, json={"content": LONG_TEXT}, headers=headers) as response,
        ):
            async for line in response.aiter_lines():
                if line == "event: token":
                    streaming.set()

    elsewhere = asyncio.create_task(stream_elsewhere())
    try:
        await asyncio.wait_for(streaming.wait(), timeout=60)
        await page.locator("#composer-input").fill("Are you there?")
        await page.locator("#composer-input").press("Enter")
        await expect(page.locator("#chat-error")).to_contain_text(
            "A reply is already being generated for this session. Wait for it to finish"
        )
        await expect(page.locator("#composer-input")).to_have_value("Are you there?")  # given back
        await expect(page.locator(".message")).to_have_count(0)
    finally:
        elsewhere.cancel()  # the other client leaves: its reply is stored as incomplete
        with contextlib.suppress(asyncio.CancelledError):
            await elsewhere


async def test_the_web_chat_in_a_browser(server: LiveServer, browser: Browser) -> None:
    """Each phase in a fresh tab (its own storage), one after the other on one server."""
    async with open_tab(browser) as tab:
        await _sign_up_log_in_stream_a_reply_stop_it_and_find_it_after_a_reload(server, tab)
    async with open_tab(browser) as tab:
        await _injected_html_and_javascript_links_are_shown_as_text_and_never_run(server, tab)
    async with open_tab(browser) as tab:
        await _a_refused_access_token_is_refreshed_and_the_request_sent_once_more(server, tab)
    async with open_tab(browser) as tab:
        await _a_reply_already_running_is_shown_plainly(server, tab)
    async with open_tab(browser, width=390, height=800) as tab:
        await _a_phone_width_screen_in_dark_mode(server, tab)
