"""The web chat's approval card (TOOLS_REQUIRING_APPROVAL) in headless Chromium against a live
``parley serve``: a sum pauses the reply on the calculator; the page shows the tool and its
arguments, refuses a new message plainly, shows the card again after a reload, runs the call with
edited arguments, and tells the model of a rejection with its reason."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.async_api import Browser, Page, expect

from tests.e2e.web.conftest import (
    LiveServer,
    Tab,
    log_in_through_the_page,
    module_server,
    new_email,
    open_tab,
    register_user,
)

pytestmark = pytest.mark.e2e

CARD = ".message.assistant .approval"


@pytest.fixture(scope="module")
def server(request: pytest.FixtureRequest) -> Iterator[LiveServer]:
    with module_server(
        request,
        "web-approval",
        TOOLS_REQUIRING_APPROVAL="calculator",
    ) as started:
        yield started


async def _ask(page: Page, question: str) -> None:
    await page.locator("#composer-input").fill(question)
    await page.locator("#composer-input").press("Enter")


async def _edit_after_a_refused_message_and_a_reload(server: LiveServer, tab: Tab) -> None:
    page = tab.page
    email = new_email("approver")
    await register_user(server.base_url, email)
    await log_in_through_the_page(page, server.base_url, email)

    await _ask(page, "What is 17 * 23?")

    card = page.locator(CARD)
    await expect(card.locator(".asked")).to_contain_text("The agent wants to run calculator")
    await expect(card.locator("textarea.arguments")).to_have_value('{\n  "expression": "17 * 23"\n}')
    await expect(page.locator("#send")).to_be_visible()  # the stream ended: the composer is free
    await _ask(page, "Hello?")
    await expect(page.locator("#chat-error")).to_contain_text(
        "A tool call in this session is awaiting approval: approve or reject it first."
    )

    await page.reload()
    await expect(page.locator(CARD)).to_have_count(1)  # the pending approval, read from the API
    await page.locator(f"{CARD} textarea.arguments").fill('{"expression": "2 + 2"}')
    await page.locator(f"{CARD} .decide-edit").click()

    reply = page.locator(".message.assistant").last
    await expect(reply).to_have_attribute("data-status", "complete")
    await expect(reply.locator(".body")).to_contain_text("says: 4")
    await expect(reply.locator(".tool summary")).to_have_text("Tool: calculator")
    await expect(page.locator(CARD)).to_have_count(0)


async def _reject_with_a_reason_and_refuse_bad_json(server: LiveServer, tab: Tab) -> None:
    page = tab.page
    email = new_email("rejecter")
    await register_user(server.base_url, email)
    await log_in_through_the_page(page, server.base_url, email)
    await _ask(page, "What is 3 * 3?")
    card = page.locator(CARD)
    await expect(card).to_have_count(1)

    await card.locator("textarea.arguments").fill("[1, 2]")
    await card.locator(".decide-edit").click()
    await expect(card.locator(".field-error")).to_have_text("The arguments must be a JSON object.")
    await card.locator("input.reason").fill("<b>not</b> now")
    await card.locator(".decide-reject").click()

    reply = page.locator(".message.assistant").last
    await expect(reply).to_have_attribute("data-status", "complete")
    await expect(reply.locator(".body")).to_contain_text("rejected this tool call")
    await expect(reply.locator(".body")).to_contain_text("<b>not</b> now")  # shown as text
    assert await reply.locator(".body b").count() == 0


async def test_approving_tool_calls_in_the_browser(server: LiveServer, browser: Browser) -> None:
    async with open_tab(browser) as tab:
        await _edit_after_a_refused_message_and_a_reload(server, tab)
    async with open_tab(browser) as tab:
        await _reject_with_a_reason_and_refuse_bad_json(server, tab)
