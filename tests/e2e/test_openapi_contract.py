"""The generated OpenAPI document tells the truth about behaviour.

Rules:
- every documented length limit of a request field is the constant the domain enforces
  (e-mail 254, session name 1..200, message content 1..32,000 by default, new passwords
  8..128); a string field without a documented maximum is a failure;
- every route documents every status it can answer: 422 when it takes any input, 413
  and 408 when it takes a body, 401 when it needs a token, 429 and 503 under ``/api/v1``, 404 when
  it names a session, plus the business answers of :data:`BUSINESS_STATUSES`;
- every documented 422 has API.md's ``{detail, errors: [{field, message}]}`` shape;
- the documented content limit is the default of ``MAX_MESSAGE_CHARS``.
"""

from __future__ import annotations

from typing import Any

import pytest

from parley.application.chat.turns import TurnPolicy
from parley.config import Settings
from parley.domain.approvals import MAX_REJECTION_REASON_LENGTH
from parley.domain.chat import DEFAULT_MAX_MESSAGE_LENGTH, MAX_CONVERSATION_NAME_LENGTH
from parley.domain.users import MAX_EMAIL_LENGTH, PasswordPolicy
from tests.e2e.conftest import AppFactory

pytestmark = pytest.mark.e2e

_POLICY = PasswordPolicy()
_EMAIL = (None, MAX_EMAIL_LENGTH)
_NEW_PASSWORD = (_POLICY.min_length, _POLICY.max_length)
_PRESENTED_PASSWORD = (None, _POLICY.max_length)  # checked, not chosen: no valid one is longer
_NAME = (1, MAX_CONVERSATION_NAME_LENGTH)
_MAX_TOKEN = 4096  # the edge's own bound: a token is not a domain value

# (path, field) -> (minLength, maxLength) documented for that request field.
DOCUMENTED_LIMITS: dict[tuple[str, str], tuple[int | None, int]] = {
    ("/api/v1/auth/register", "email"): _EMAIL,
    ("/api/v1/auth/register", "password"): _NEW_PASSWORD,
    ("/api/v1/auth/login", "email"): _EMAIL,
    ("/api/v1/auth/login", "username"): _EMAIL,
    ("/api/v1/auth/login", "password"): _PRESENTED_PASSWORD,
    ("/api/v1/auth/refresh", "refresh_token"): (1, _MAX_TOKEN),
    ("/api/v1/auth/logout", "refresh_token"): (None, _MAX_TOKEN),
    ("/api/v1/users/me", "email"): _EMAIL,
    ("/api/v1/users/me", "current_password"): _PRESENTED_PASSWORD,
    ("/api/v1/users/me/password", "current_password"): _PRESENTED_PASSWORD,
    ("/api/v1/users/me/password", "new_password"): _NEW_PASSWORD,
    ("/api/v1/chat/sessions", "name"): _NAME,
    ("/api/v1/chat/sessions/{session_id}", "name"): _NAME,
    ("/api/v1/chat/sessions/{session_id}/messages", "content"): (1, DEFAULT_MAX_MESSAGE_LENGTH),
    ("/api/v1/chat/sessions/{session_id}/messages/stream", "content"): (1, DEFAULT_MAX_MESSAGE_LENGTH),
    ("/api/v1/chat/sessions/{session_id}/approval", "reason"): (None, MAX_REJECTION_REASON_LENGTH),
    ("/api/v1/chat/sessions/{session_id}/approval/stream", "reason"): (None, MAX_REJECTION_REASON_LENGTH),
}

# What a route answers beyond what its inputs, token and path imply (API.md).
BUSINESS_STATUSES: dict[tuple[str, str], set[str]] = {
    ("post", "/api/v1/auth/register"): {"201", "400"},
    ("post", "/api/v1/auth/login"): {"401"},
    ("post", "/api/v1/auth/refresh"): {"401"},
    ("patch", "/api/v1/users/me"): {"400"},
    ("post", "/api/v1/users/me/password"): {"204", "400"},
    ("post", "/api/v1/chat/sessions"): {"201"},
    ("post", "/api/v1/chat/sessions/{session_id}/messages"): {"409", "502", "504"},
    ("post", "/api/v1/chat/sessions/{session_id}/messages/stream"): {"409"},
    ("post", "/api/v1/chat/sessions/{session_id}/approval"): {"202", "409", "410", "502", "504"},
    ("post", "/api/v1/chat/sessions/{session_id}/approval/stream"): {"409", "410"},
    ("get", "/health"): {"200", "503"},
}


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in schema:
        return _resolve(spec, spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]])
    return schema


def _body_schema(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """The object schema of a body (of its non-null branch when the body is optional)."""
    schema = _resolve(spec, schema)
    branches = [s for s in schema.get("anyOf", []) if s.get("type") != "null"]
    return _resolve(spec, branches[0]) if branches else schema


def _string_schema(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any] | None:
    """The free-text string branch of a property (``str`` or ``str | None``), None for other types
    and for closed sets of strings (an enum, a UUID), whose length needs no documenting."""
    schema = _resolve(spec, schema)
    candidates: list[dict[str, Any]] = [schema, *schema.get("anyOf", [])]
    for candidate in candidates:
        if (
            candidate.get("type") == "string"
            and "enum" not in candidate
            and candidate.get("format") != "uuid"
        ):
            return candidate
    return None


def request_string_fields(spec: dict[str, Any]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Every string field of every documented request body, by (path, field name)."""
    found: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for path, methods in spec["paths"].items():
        for operation in methods.values():
            for body in operation.get("requestBody", {}).get("content", {}).values():
                for name, prop in _body_schema(spec, body["schema"]).get("properties", {}).items():
                    string = _string_schema(spec, prop)
                    if string is not None:
                        found.setdefault((path, name), []).append(string)
    return found


@pytest.fixture
async def spec(start_app: AppFactory) -> dict[str, Any]:
    app, _ = await start_app()
    return app.openapi()


async def test_documented_length_limits_are_the_domain_constants(spec: dict[str, Any]) -> None:
    fields = request_string_fields(spec)

    assert set(fields) == set(DOCUMENTED_LIMITS), "a request field without a documented limit, or a stale one"
    for key, schemas in fields.items():
        for schema in schemas:
            documented = (schema.get("minLength"), schema.get("maxLength"))
            assert documented == DOCUMENTED_LIMITS[key], key
    # The documented content limit is MAX_MESSAGE_CHARS's default, wherever that default lives.
    assert Settings.model_fields["max_message_chars"].default == DEFAULT_MAX_MESSAGE_LENGTH
    assert TurnPolicy().max_message_chars == DEFAULT_MAX_MESSAGE_LENGTH


def _statuses_implied(spec: dict[str, Any], method: str, path: str) -> set[str]:
    operation = spec["paths"][path][method]
    implied = set(BUSINESS_STATUSES.get((method, path), set()))
    if operation.get("parameters") or operation.get("requestBody"):
        implied.add("422")
    if operation.get("requestBody"):
        implied |= {"413", "408"}
    if operation.get("security"):
        implied.add("401")
    if path.startswith("/api/v1/"):
        implied |= {"429", "503"}
    if "{session_id}" in path:
        implied.add("404")
    return implied


async def test_every_route_documents_every_status_it_can_answer(spec: dict[str, Any]) -> None:
    missing = {
        f"{method.upper()} {path}": sorted(
            _statuses_implied(spec, method, path) - set(operation["responses"])
        )
        for path, methods in spec["paths"].items()
        for method, operation in methods.items()
    }

    assert {route: statuses for route, statuses in missing.items() if statuses} == {}
    assert "401" in spec["paths"]["/api/v1/auth/refresh"]["post"]["responses"]


async def test_every_documented_422_has_the_api_md_shape(spec: dict[str, Any]) -> None:
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            documented = operation["responses"].get("422")
            if documented is not None:
                schema = documented["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ValidationErrorOut"}, (method, path)
    assert "HTTPValidationError" not in spec["components"]["schemas"]
