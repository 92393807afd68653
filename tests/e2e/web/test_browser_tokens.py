"""The web chat with access tokens that live 1.8 seconds (``JWT_ACCESS_TOKEN_EXPIRE_HOURS=0.0005``):
the page outlives its tokens without asking for the password again, while it pages through
sessions and history, renames and deletes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Request, expect

from tests.e2e.conftest import PASSWORD
from tests.e2e.web.conftest import (
    LiveServer,
    Tab,
    jwt_expiry,
    log_in_through_the_page,
    module_server,
    new_email,
    open_tab,
    register_user,
    stored_tokens,
)

pytestmark = pytest.mark.e2e

SESSIONS = 25  # more than the page's 20 a page
TURNS = 16  # 32 messages: more than the page's 30 a page


@pytest.fixture(scope="module")
def server(request: pytest.FixtureRequest) -> Iterator[LiveServer]:
    with module_server(
        request,
        "web-tokens",
        JWT_ACCESS_TOKEN_EXPIRE_HOURS="0.0005",
        RATE_LIMIT_ENABLED="false",
        # A turn may take 3 s; the offline model writes 40 tokens a second.
        LLM_TIMEOUT_SECONDS="3",
        OFFLINE_MODEL_TOKEN_DELAY_MS="25",
    ) as started:
        yield started


class ApiUser:
    """One user driving the API directly, logging in again whenever its token has expired."""

    def __init__(self, client: httpx.AsyncClient, email: str) -> None:
        self.client = client
        self.email = email
        self.token = "none"  # logs in on the first 401

    async def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        for _ in range(3):
            response = await self.client.request(
                method, f"/api/v1/{path}", json=body, headers={"Authorization": f"Bearer {self.token}"}
            )
            if response.status_code != 401:
                assert response.is_success, response.text
                return response.json() if response.content else None
            login = await self.client.post(
                "/api/v1/auth/login", json={"email": self.email, "password": PASSWORD}
            )
            self.token = login.json()["access_token"]
        raise AssertionError("still refused after logging in again")


async def _until_refused(base_url: str, token: str) -> None:
    """Return once the server refuses ``token`` as expired (a condition polled, not a delay)."""
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        while True:
            answer = await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
            if answer.status_code == 401:
                assert time.time() > jwt_expiry(token)
                return
            assert answer.status_code == 200, answer.text
            assert time.monotonic() < deadline, "the token never expired"
            await asyncio.sleep(0.25)


async def _an_expired_access_token_is_refreshed_without_logging_in_again(
    server: LiveServer, tab: Tab
) -> None:
    page = tab.page
    email = new_email("expiry")
    await register_user(server.base_url, email)
    refreshes: list[str] = []

    def record(request: Request) -> None:
        if request.url.endswith("/api/v1/auth/refresh"):
            refreshes.append(request.url)

    page.on("request", record)
    await log_in_through_the_page(page, server.base_url, email)
    first = (await stored_tokens(page))["access"]
    await _until_refused(server.base_url, first)  # past its expiry and the server's leeway

    sessions = page.locator("#session-list .session")
    await expect(sessions).to_have_count(1)
    await page.locator("#new-session").click()
    await expect(sessions).to_have_count(2)
    await page.locator("#composer-input").fill("still there?")
    await page.locator("#composer-input").press("Enter")
    await expect(page.locator(".message.assistant").last).to_have_attribute("data-status", "complete")

    await expect(page.locator("#auth-view")).to_be_hidden()
    await expect(page.locator("#chat-error")).to_be_hidden()
    assert refreshes
    assert (await stored_tokens(page))["access"] != first


async def _sessions_and_history_page_in_while_scrolling_and_sessions_rename_and_delete(
    server: LiveServer, tab: Tab
) -> None:
    page = tab.page
    email = new_email("paging")
    await register_user(server.base_url, email)
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
        user = ApiUser(client, email)
        for number in range(1, SESSIONS):
            await user.call("POST", "chat/sessions", {"name": f"Chat {number:02}"})
        long_one = await user.call("POST", "chat/sessions", {"name": "Long history"})
        for turn in range(1, TURNS + 1):
            # Arithmetic: a tool call and a short reply, quick even at 25 ms a token.
            await user.call(
                "POST", f"chat/sessions/{long_one['id']}/messages", {"content": f"turn {turn}: 1+{turn}"}
            )

    await log_in_through_the_page(page, server.base_url, email)
    await expect(page.locator("#session-title")).to_have_text("Long history")  # the most recent
    messages = page.locator(".message")
    await expect(messages).to_have_count(30)
    await page.locator("#messages").evaluate("element => { element.scrollTop = 0; }")
    await expect(messages).to_have_count(2 * TURNS)
    await expect(messages.first).to_contain_text("turn 1: 1+1")
    await expect(page.locator("#history-status")).to_have_text("This is the start of the conversation.")

    sessions = page.locator("#session-list .session")
    await page.locator("#session-scroll").evaluate("element => { element.scrollTop = element.scrollHeight; }")
    await expect(sessions).to_have_count(SESSIONS)
    await expect(sessions.last).to_contain_text("Chat 01")

    await page.locator("#rename-session").click()
    await page.locator("#rename-input").fill("   ")
    await page.locator("#rename-input").press("Enter")
    await expect(page.locator("#rename-error")).not_to_be_empty()  # a blank name is refused
    await page.locator("#rename-input").fill("Renamed chat")
    await page.locator("#rename-input").press("Enter")
    await expect(page.locator("#session-title")).to_have_text("Renamed chat")
    await expect(sessions.first.locator(".session-name")).to_have_text("Renamed chat")

    page.once("dialog", lambda dialog: dialog.accept())
    await page.locator("#delete-session").click()
    await expect(sessions).to_have_count(SESSIONS - 1)
    await expect(page.locator("#session-list")).not_to_contain_text("Renamed chat")
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
        remaining = await ApiUser(client, email).call("GET", "chat/sessions?limit=100")
    assert long_one["id"] not in [session["id"] for session in remaining["items"]]
    await expect(page.locator("#auth-view")).to_be_hidden()  # never asked to log in again


async def _a_reply_that_runs_out_of_time_is_shown_as_failed(server: LiveServer, tab: Tab) -> None:
    """The server stops a turn at LLM_TIMEOUT_SECONDS and says so in the stream (its 504)."""
    page = tab.page
    email = new_email("timeout")
    await register_user(server.base_url, email)
    await log_in_through_the_page(page, server.base_url, email)
    await page.locator("#composer-input").fill(" ".join(["a word the model repeats slowly"] * 40))
    await page.locator("#composer-input").press("Enter")
    reply = page.locator(".message.assistant").last
    await expect(reply).to_have_attribute("data-status", "failed")
    await expect(reply.locator(".status.failed")).to_have_text("Failed: The language model is unavailable.")
    await expect(page.locator("#send")).to_be_visible()


async def test_a_page_outlives_its_access_tokens(server: LiveServer, browser: Browser) -> None:
    """Each phase in a fresh tab (its own storage), one after the other on one server."""
    async with open_tab(browser) as tab:
        await _an_expired_access_token_is_refreshed_without_logging_in_again(server, tab)
    async with open_tab(browser) as tab:
        await _sessions_and_history_page_in_while_scrolling_and_sessions_rename_and_delete(server, tab)
    async with open_tab(browser) as tab:
        await _a_reply_that_runs_out_of_time_is_shown_as_failed(server, tab)
