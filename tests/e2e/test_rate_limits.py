"""API.md, "Rate limits", through create_app on real PostgreSQL (memory storage).

Limits are overridden small ("2 per minute") so each test exhausts one budget in a few calls.
Budgets are per route, so the calls that set a test up (register, log in, open a session)
do not eat into the budget of the route under test; where a test spends an address's
login budget, its set-up logs in from another address (:func:`from_address`).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import pytest
from fastapi import FastAPI

from parley.adapters.inbound.http.rate_limits import RateLimitConfig
from tests.e2e.conftest import PASSWORD, AppFactory, make_settings, register, signed_up
from tests.e2e.sse_client import parse_events
from tests.e2e.test_auth_api import new_email
from tests.e2e.test_chat_api import CHAT, new_session, send
from tests.fakes.security import FakePasswordHasher

pytestmark = pytest.mark.e2e

ME = "/api/v1/users/me"
ME_TEMPLATE = "/api/v1/users/me"
REGISTER = "/api/v1/auth/register"
LOGIN = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"
WRONG_PASSWORD = "Wr0ng!Passw0rd"
LIMITS = ("default", "chat", "chat_stream", "registration", "login", "login_account")  # RateLimitSettings
EXEMPT = ("/health", "/metrics", "/openapi.json", "/docs")
AddressClient = Callable[[str], AbstractAsyncContextManager[httpx.AsyncClient]]


def limits_on(**limits: Any) -> dict[str, Any]:
    """The ``limits`` settings group with rate limits on: ``limits`` (its fields), and roomy
    limits for the routes not named."""
    return {"enabled": True, **dict.fromkeys(LIMITS, "100 per minute"), **limits}


async def limited_app(start_app: AppFactory, **limits: Any) -> tuple[FastAPI, httpx.AsyncClient]:
    """An app with rate limits on (see :func:`limits_on`)."""
    return await start_app(limits=limits_on(**limits))


def from_address(app: FastAPI) -> AddressClient:
    """Clients of ``app`` whose TCP peer is the given address."""

    @asynccontextmanager
    async def client(address: str) -> AsyncIterator[httpx.AsyncClient]:
        transport = httpx.ASGITransport(app=app, client=(address, 40000), raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http

    return client


def rejections(app: FastAPI, endpoint: str) -> float:
    registry = app.state.container.metrics_registry()
    value = registry.get_sample_value("parley_rate_limit_rejections_total", {"endpoint": endpoint})
    return value or 0.0


def assert_refused(response: httpx.Response, limit: str, window_seconds: int) -> None:
    assert response.status_code == 429, response.text
    assert response.json() == {"detail": f"Rate limit exceeded: {limit}"}
    assert 1 <= int(response.headers["Retry-After"]) <= window_seconds
    assert response.headers["X-Request-ID"]


async def test_the_default_limit_refuses_with_429_and_retry_after(start_app: AppFactory) -> None:
    app, client = await limited_app(start_app, default="2 per minute")

    answers = [await client.get(ME) for _ in range(3)]

    assert [a.status_code for a in answers[:2]] == [401, 401]
    assert_refused(answers[2], "2 per 1 minute", 60)
    assert rejections(app, ME_TEMPLATE) == 1


async def test_register_has_its_own_limit(start_app: AppFactory) -> None:
    _, client = await limited_app(start_app, registration="2 per hour")

    answers = [
        await client.post("/api/v1/auth/register", json={"email": new_email(), "password": PASSWORD})
        for _ in range(3)
    ]

    assert [a.status_code for a in answers[:2]] == [201, 201]
    assert_refused(answers[2], "2 per 1 hour", 3600)


async def test_login_has_its_own_limit(start_app: AppFactory) -> None:
    _, client = await limited_app(start_app, login="2 per minute")
    email = new_email()
    await register(client, email)

    answers = [
        await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD}) for _ in range(3)
    ]

    assert [a.status_code for a in answers[:2]] == [200, 200]
    assert_refused(answers[2], "2 per 1 minute", 60)


async def test_chat_messages_have_their_own_limit_instead_of_the_default(start_app: AppFactory) -> None:
    app, client = await limited_app(start_app, default="1 per minute", chat="3 per minute")
    headers = await signed_up(client, new_email())
    session_id = (await new_session(client, headers))["id"]

    answers = [await send(client, headers, session_id, f"message {n}") for n in range(4)]
    history = await client.get(f"{CHAT}/{session_id}/messages", headers=headers)

    assert [a.status_code for a in answers[:3]] == [200, 200, 200]
    assert_refused(answers[3], "3 per 1 minute", 60)
    assert [m["content"] for m in history.json()["items"] if m["role"] == "user"] == [
        "message 0",
        "message 1",
        "message 2",
    ]
    assert rejections(app, "/api/v1/chat/sessions/{session_id}/messages") == 1


async def test_chat_streams_have_their_own_limit(start_app: AppFactory) -> None:
    app, client = await limited_app(start_app, chat_stream="2 per minute")
    headers = await signed_up(client, new_email())
    session_id = (await new_session(client, headers))["id"]
    url = f"{CHAT}/{session_id}/messages/stream"

    answers = [await client.post(url, headers=headers, json={"content": "hi"}) for _ in range(3)]

    assert [a.status_code for a in answers[:2]] == [200, 200]
    assert parse_events(answers[1].text)[-1][0] == "done"
    assert_refused(answers[2], "2 per 1 minute", 60)
    assert rejections(app, "/api/v1/chat/sessions/{session_id}/messages/stream") == 1


async def test_each_route_has_its_own_budget(start_app: AppFactory) -> None:
    _, client = await limited_app(start_app, default="1 per minute")
    headers = await signed_up(client, new_email())

    first_me = await client.get(ME, headers=headers)
    first_list = await client.get(CHAT, headers=headers)
    second_me = await client.get(ME, headers=headers)

    assert (first_me.status_code, first_list.status_code) == (200, 200)
    assert second_me.status_code == 429


async def test_users_do_not_share_a_budget(start_app: AppFactory) -> None:
    _, client = await limited_app(start_app, default="2 per minute")
    alice = await signed_up(client, new_email())
    bob = await signed_up(client, new_email())

    alices = [await client.get(ME, headers=alice) for _ in range(3)]
    bobs = await client.get(ME, headers=bob)

    assert [a.status_code for a in alices] == [200, 200, 429]
    assert bobs.status_code == 200


async def test_one_user_shares_a_budget_across_addresses(start_app: AppFactory) -> None:
    app, client = await limited_app(start_app, default="2 per minute")
    headers = await signed_up(client, new_email())
    client_from = from_address(app)

    async with client_from("198.51.100.1") as home, client_from("198.51.100.2") as office:
        answers = [
            await home.get(ME, headers=headers),
            await office.get(ME, headers=headers),
            await office.get(ME, headers=headers),
        ]

    assert [a.status_code for a in answers] == [200, 200, 429]


async def test_anonymous_requests_are_limited_per_address(start_app: AppFactory) -> None:
    app, _ = await limited_app(start_app, default="2 per minute")
    client_from = from_address(app)

    async with client_from("198.51.100.1") as first, client_from("198.51.100.2") as second:
        firsts = [await first.get(ME) for _ in range(3)]
        seconds = [await second.get(ME) for _ in range(2)]

    assert [a.status_code for a in firsts] == [401, 401, 429]
    assert [a.status_code for a in seconds] == [401, 401]


async def test_a_forged_token_counts_against_the_address(start_app: AppFactory) -> None:
    _, client = await limited_app(start_app, default="2 per minute")
    forged = {"Authorization": "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.forged"}

    answers = [await client.get(ME), await client.get(ME, headers=forged), await client.get(ME)]

    assert [a.status_code for a in answers] == [401, 401, 429]


async def test_forwarded_addresses_are_believed_only_from_trusted_proxies(start_app: AppFactory) -> None:
    app, _ = await limited_app(start_app, default="2 per minute", trusted_proxies=["10.0.0.0/8"])
    client_from = from_address(app)

    def forwarded_for(address: str) -> dict[str, str]:
        return {"X-Forwarded-For": address}

    async with client_from("10.1.2.3") as proxy, client_from("192.0.2.9") as stranger:
        via_proxy_a = [await proxy.get(ME, headers=forwarded_for("203.0.113.5")) for _ in range(3)]
        via_proxy_b = await proxy.get(ME, headers=forwarded_for("203.0.113.6"))
        # A stranger's forwarded header is ignored: rotating it does not buy a fresh budget.
        direct = [await stranger.get(ME, headers=forwarded_for(f"203.0.113.{n}")) for n in (7, 8, 9)]

    assert [a.status_code for a in via_proxy_a] == [401, 401, 429]
    assert via_proxy_b.status_code == 401
    assert [a.status_code for a in direct] == [401, 401, 429]


CredentialBody = Callable[[], dict[str, str]]


@pytest.mark.parametrize(
    ("url", "limit", "body", "status"),
    [
        pytest.param(
            REGISTER,
            "registration",
            lambda: {"email": new_email(), "password": PASSWORD},
            201,
            id="register",
        ),
        pytest.param(
            LOGIN,
            "login",
            lambda: {"email": new_email(), "password": WRONG_PASSWORD},
            401,
            id="login",
        ),
        pytest.param(REFRESH, "default", lambda: {"refresh_token": "not-a-refresh-token"}, 401, id="refresh"),
    ],
)
async def test_an_access_token_buys_no_credential_attempts_past_the_address_budget(
    start_app: AppFactory, url: str, limit: str, body: CredentialBody, status: int
) -> None:
    app, _ = await limited_app(start_app, **{limit: "2 per minute"})
    client_from = from_address(app)
    async with client_from("198.51.100.1") as elsewhere:
        tokens = [await signed_up(elsewhere, new_email()) for _ in range(2)]

    async with client_from("203.0.113.7") as attacker:
        spent = [await attacker.post(url, json=body()) for _ in range(2)]
        with_tokens = [await attacker.post(url, json=body(), headers=token) for token in tokens]

    assert [a.status_code for a in spent] == [status, status]
    for answer in with_tokens:
        assert_refused(answer, "2 per 1 minute", 60)
    assert rejections(app, url) == 2


async def test_one_accounts_login_budget_holds_across_addresses_and_spellings(start_app: AppFactory) -> None:
    app, client = await limited_app(start_app, login_account="3 per minute")
    email, other = new_email(), new_email()
    await register(client, email)
    await register(client, other)
    client_from = from_address(app)

    guesses = []
    for n, spelling in enumerate((email, email.upper(), f"  {email} ", email)):
        async with client_from(f"203.0.113.{n + 1}") as attacker:
            if n == 1:  # the OAuth2 form draws on the same budget as JSON
                guess = await attacker.post(LOGIN, data={"username": spelling, "password": WRONG_PASSWORD})
            else:
                guess = await attacker.post(LOGIN, json={"email": spelling, "password": WRONG_PASSWORD})
            guesses.append(guess)
    async with client_from("198.51.100.9") as somewhere_else:
        others_login = await somewhere_else.post(LOGIN, json={"email": other, "password": PASSWORD})

    assert [g.status_code for g in guesses[:3]] == [401, 401, 401]
    assert_refused(guesses[3], "3 per 1 minute", 60)
    assert others_login.status_code == 200  # the budget is the account's, not the route's
    assert rejections(app, LOGIN) == 1
    registry = app.state.container.metrics_registry()
    audited = {"action": "login", "outcome": "rate_limited"}
    assert registry.get_sample_value("parley_auth_attempts_total", audited) == 1


async def test_a_refused_login_looks_the_same_for_a_registered_and_an_unknown_email(
    start_app: AppFactory,
) -> None:
    _, client = await limited_app(start_app, login_account="2 per minute")
    registered = new_email()
    await register(client, registered)

    answers = {
        email: [await client.post(LOGIN, json={"email": email, "password": WRONG_PASSWORD}) for _ in range(3)]
        for email in (registered, new_email())
    }

    known, unknown = answers.values()
    for answer in (known[2], unknown[2]):
        assert_refused(answer, "2 per 1 minute", 60)
    assert [(a.status_code, a.content, sorted(a.headers)) for a in known] == [
        (a.status_code, a.content, sorted(a.headers)) for a in unknown
    ]


async def test_a_login_refused_by_the_account_budget_never_reaches_the_password_hasher(
    start_app: AppFactory,
) -> None:
    hasher = FakePasswordHasher()
    _, client = await start_app(limits=limits_on(login_account="2 per minute"), overrides={"hasher": hasher})
    email = new_email()
    await register(client, email)

    spent = [await client.post(LOGIN, json={"email": email, "password": WRONG_PASSWORD}) for _ in range(2)]
    checked_while_spending = hasher.verifications
    refused = [
        await client.post(LOGIN, json={"email": email, "password": password})
        for password in (WRONG_PASSWORD, PASSWORD, "x")
    ]

    assert [a.status_code for a in spent] == [401, 401]
    assert checked_while_spending == 2
    assert [a.status_code for a in refused] == [429, 429, 429]
    assert hasher.verifications == 2  # no password check, hence no bcrypt, for a refused attempt


async def test_the_owner_logs_in_until_attempts_have_spent_the_account_budget(start_app: AppFactory) -> None:
    """The known trade-off of a per-account budget: whoever knows an address can spend it."""
    app, client = await limited_app(start_app, login_account="3 per minute")
    email = new_email()
    await register(client, email)
    wrong, right = {"email": email, "password": WRONG_PASSWORD}, {"email": email, "password": PASSWORD}
    client_from = from_address(app)

    async with client_from("203.0.113.5") as attacker, client_from("198.51.100.20") as owner:
        guesses = [await attacker.post(LOGIN, json=wrong) for _ in range(2)]
        owners_first = await owner.post(LOGIN, json=right)
        last_guess = await attacker.post(LOGIN, json=wrong)
        owners_second = await owner.post(LOGIN, json=right)

    assert [g.status_code for g in guesses] == [401, 401]
    assert owners_first.status_code == 200
    assert_refused(last_guess, "3 per 1 minute", 60)
    assert_refused(owners_second, "3 per 1 minute", 60)


async def test_every_api_operation_is_limited(start_app: AppFactory) -> None:
    """Guards against a router that forgets ``dependencies=[RATE_LIMITED]``."""
    app, client = await limited_app(start_app, **dict.fromkeys(LIMITS, "1 per minute"))
    operations = [
        (method.upper(), re.sub(r"\{[^}]+\}", str(uuid4()), path))
        for path, methods in app.openapi()["paths"].items()
        if path not in EXEMPT
        for method in methods
    ]

    seconds = {}
    for method, url in operations:
        await client.request(method, url)  # anonymous, no body: 401/422, but it counts
        seconds[(method, url)] = (await client.request(method, url)).status_code

    assert len(operations) >= 15
    assert dict.fromkeys(operations, 429) == seconds


@pytest.mark.parametrize("path", EXEMPT)
async def test_operations_and_docs_are_exempt(start_app: AppFactory, path: str) -> None:
    _, client = await limited_app(start_app, default="1 per minute")

    answers = [await client.get(path) for _ in range(3)]

    assert [a.status_code for a in answers] == [200, 200, 200]


async def test_limits_are_off_when_disabled(start_app: AppFactory) -> None:
    _, client = await start_app(limits={"enabled": False, "default": "1 per minute"})

    answers = [await client.get(ME) for _ in range(3)]

    assert [a.status_code for a in answers] == [401, 401, 401]


def test_an_unreadable_limit_is_refused_by_settings_and_by_the_limiter(
    e2e_database_url: str, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match="'lots' is not a rate limit"):
        make_settings(e2e_database_url, tmp_path, limits={"enabled": True, "chat": "lots"})
    with pytest.raises(ValueError, match="invalid rate limit chat='lots'"):
        RateLimitConfig(
            enabled=True,
            default="200 per day",
            chat="lots",
            chat_stream="20 per minute",
            register="10 per hour",
            login="20 per minute",
        )
    with pytest.raises(ValueError, match="invalid rate limit login_account='lots'"):
        RateLimitConfig(login_account="lots")
