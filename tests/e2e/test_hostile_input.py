"""Hostile input on every route: never a 500, and every 422 in API.md's shape.

The routes, their body fields, form fields, query and path parameters are read from the
app's own OpenAPI document, so a route or field added later is attacked too. Each case
changes one input of an otherwise valid request, so the hostile value is what reaches
the code (and PostgreSQL) behind the route.

Rules checked (API.md, "Errors"):
- a client mistake is never a 5xx;
- a NUL or a lone UTF-16 surrogate in any string, a value of the wrong JSON type, and a
  bad query or path value are a 422 naming the offending field;
- a body that cannot be parsed (not UTF-8, nested too deeply, a number with too many
  digits, not JSON, a malformed form) is a 422 on the field ``body``, never a 400;
- every 422 is ``{"detail": "Validation error", "errors": [{"field", "message"}, ...]}``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.e2e.conftest import PASSWORD, AppFactory, log_in, register
from tests.e2e.test_auth_api import new_email

pytestmark = pytest.mark.e2e

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
HOSTILE_STRINGS = {"NUL": "a\x00b", "lone surrogate": "a\ud800b"}
NESTED = json.loads("[" * 200 + "]" * 200)
WRONG_TYPES: dict[str, Any] = {
    "number": 7,
    "boolean": True,
    "array": ["a"],
    "object": {"a": "b"},
    "huge float": 1e308,
    "nested arrays": NESTED,
}
UNPARSEABLE_BODIES: dict[str, tuple[str, bytes]] = {
    "invalid UTF-8": (JSON, b'{"email": "\xff\xfe"}'),
    "over-deep nesting": (JSON, b"[" * 100_000 + b"]" * 100_000),
    "5000-digit integer": (JSON, b'{"email": ' + b"9" * 5000 + b"}"),
    "not JSON": (JSON, b"{nope"),
    "multipart without boundary": ("multipart/form-data", b"garbage"),
    "multipart part without a name": (
        "multipart/form-data; boundary=xyz",
        b"--xyz\r\nContent-Type: text/plain\r\n\r\nhello\r\n--xyz--\r\n",
    ),
}
WRONG_BODY_SHAPES: dict[str, bytes] = {"array": b"[]", "string": b'"text"', "number": b"1"}
HOSTILE_PARAMETERS = {  # as they appear in the URL (percent-encoded)
    "NUL": "a%00b",
    "5000 digits": "9" * 5000,
    "letters": "abc",
    "negative": "-1",
    "float overflow": "1e999",
    "encoded surrogate": "%ED%A0%80",
    "invalid UTF-8": "%FF%FE",
}


def valid_values(email: str) -> dict[str, Any]:
    """A valid value for every request field, so that only the hostile one is wrong."""
    return {
        "email": new_email(),
        "username": email,
        "password": PASSWORD,
        "current_password": PASSWORD,
        "new_password": "An0ther!Passw0rd",
        "refresh_token": "not-a-token",
        "name": "Trip",
        "content": "hello",
        "id": str(uuid.uuid4()),
        "decision": "edit",
        "reason": "not now",
        "arguments": {"expression": "1 + 1"},
    }


# A "wrong type" that is the field's own type is not hostile there.
OWN_TYPES: dict[str, set[str]] = {"arguments": {"object"}}


@dataclass(frozen=True, slots=True)
class Operation:
    """One documented route: its method and path, and the inputs the OpenAPI document lists."""

    method: str
    path: str
    bodies: dict[str, list[str]] = field(default_factory=dict)  # content type -> field names
    query: list[str] = field(default_factory=list)
    path_parameters: list[str] = field(default_factory=list)

    def url(self, session_id: str, replaced: dict[str, str] | None = None) -> str:
        """The path with the user's own session (and that valid UUID for any other id in it, such as
        a memory's), or with the ``replaced`` path values."""
        return self.path.format_map(dict.fromkeys(self.path_parameters, session_id) | (replaced or {}))


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in schema:
        return _resolve(spec, spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]])
    if "anyOf" in schema:  # an optional body: the non-null branch
        return _resolve(spec, next(s for s in schema["anyOf"] if s.get("type") != "null"))
    return schema


def documented_operations(app: FastAPI) -> Iterator[Operation]:
    spec = app.openapi()
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            content = operation.get("requestBody", {}).get("content", {})
            parameters = operation.get("parameters", [])
            yield Operation(
                method=method.upper(),
                path=path,
                bodies={
                    kind: list(_resolve(spec, body["schema"]).get("properties", {}))
                    for kind, body in content.items()
                },
                query=[p["name"] for p in parameters if p["in"] == "query"],
                path_parameters=[p["name"] for p in parameters if p["in"] == "path"],
            )


@dataclass
class Findings:
    """Every broken rule, reported together at the end (one failure lists them all)."""

    problems: list[str] = field(default_factory=list)
    requests: int = 0

    def merge(self, other: Findings) -> None:
        self.problems += other.problems
        self.requests += other.requests

    def check(self, case: str, response: httpx.Response, *, expected_field: str | None) -> None:
        self.requests += 1
        status, text = response.status_code, response.text[:300]
        if status >= 500:
            self.problems.append(f"{case}: {status} {text}")
            return
        if expected_field is not None and status != 422:
            self.problems.append(f"{case}: expected 422 on {expected_field!r}, got {status} {text}")
            return
        if status == 422:
            self._check_validation_body(case, response, expected_field)

    def _check_validation_body(self, case: str, response: httpx.Response, expected: str | None) -> None:
        body = response.json()
        entries = body.get("errors")
        well_formed = (
            set(body) == {"detail", "errors"}
            and body["detail"] == "Validation error"
            and isinstance(entries, list)
            and len(entries) > 0
            and all(
                isinstance(e, dict)
                and set(e) == {"field", "message"}
                and all(isinstance(v, str) for v in e.values())
                for e in entries
            )
        )
        if not well_formed:
            self.problems.append(f"{case}: 422 body not in API.md's shape: {response.text[:300]}")
        elif expected is not None and expected not in [e["field"] for e in entries]:
            self.problems.append(f"{case}: 422 does not name {expected!r}: {response.text[:300]}")


@pytest.fixture
async def attack(start_app: AppFactory) -> tuple[FastAPI, httpx.AsyncClient, dict[str, str], str, str]:
    """The app, its client, a user's bearer header, that user's e-mail and one of their sessions."""
    app, client = await start_app()
    email = new_email()
    await register(client, email)
    headers = {"Authorization": f"Bearer {(await log_in(client, email))['access_token']}"}
    session = await client.post("/api/v1/chat/sessions", headers=headers, json={"name": "target"})
    assert session.status_code == 201, session.text
    return app, client, headers, email, session.json()["id"]


async def _send_json(
    client: httpx.AsyncClient, operation: Operation, url: str, headers: dict[str, str], payload: Any
) -> httpx.Response:
    content = json.dumps(payload).encode()  # lone surrogates travel as "\ud800" escapes
    return await client.request(
        operation.method, url, content=content, headers={**headers, "Content-Type": JSON}
    )


async def _attack_body_fields(
    client: httpx.AsyncClient, operation: Operation, url: str, headers: dict[str, str], email: str
) -> Findings:
    """Each JSON and form field of the route's body, one hostile value at a time."""
    findings = Findings()
    valid = valid_values(email)
    for name in operation.bodies.get(JSON, []):
        assert name in valid, f"{operation.path}: give the new body field {name!r} a valid value here"
        base = {key: valid[key] for key in operation.bodies[JSON]}
        for label, value in {**HOSTILE_STRINGS, **WRONG_TYPES}.items():
            if label in OWN_TYPES.get(name, set()):
                continue
            response = await _send_json(client, operation, url, headers, {**base, name: value})
            findings.check(
                f"{operation.method} {operation.path} {name}={label}", response, expected_field=name
            )
    for name in operation.bodies.get(FORM, []):
        form = {key: valid[key] for key in operation.bodies[FORM]} | {name: HOSTILE_STRINGS["NUL"]}
        response = await client.request(operation.method, url, data=form, headers=headers)
        findings.check(f"{operation.method} {operation.path} form {name}=NUL", response, expected_field=name)
    return findings


async def _attack_parameters(
    client: httpx.AsyncClient, operation: Operation, headers: dict[str, str], session_id: str
) -> Findings:
    """Each query parameter and path parameter, one hostile value at a time."""
    findings = Findings()
    for name in operation.query:
        for label, value in HOSTILE_PARAMETERS.items():
            url = f"{operation.url(session_id)}?{name}={value}"
            response = await client.request(operation.method, url, headers=headers)
            findings.check(
                f"{operation.method} {operation.path}?{name}={label}", response, expected_field=name
            )
    for name in operation.path_parameters:
        for label, value in {"NUL": "%00", "5000 digits": "9" * 5000, "not a UUID": "abc"}.items():
            url = operation.url(session_id, {name: value})
            response = await client.request(operation.method, url, headers=headers)
            findings.check(
                f"{operation.method} {operation.path} {name}={label}", response, expected_field=name
            )
    return findings


async def test_hostile_values_are_422_naming_the_field_on_every_route(
    attack: tuple[FastAPI, httpx.AsyncClient, dict[str, str], str, str],
) -> None:
    app, client, headers, email, session_id = attack
    findings = Findings()
    for operation in documented_operations(app):
        findings.merge(
            await _attack_body_fields(client, operation, operation.url(session_id), headers, email)
        )
        findings.merge(await _attack_parameters(client, operation, headers, session_id))

    assert findings.problems == [], "\n".join(findings.problems)
    assert findings.requests > 150
    assert (await client.get("/api/v1/users/me", headers=headers)).status_code == 200  # nothing logged us out


async def test_unparseable_bodies_are_422_on_body_on_every_route(
    attack: tuple[FastAPI, httpx.AsyncClient, dict[str, str], str, str],
) -> None:
    app, client, headers, _, session_id = attack
    findings = Findings()
    cases = {**UNPARSEABLE_BODIES, **{f"JSON {k}": (JSON, v) for k, v in WRONG_BODY_SHAPES.items()}}
    for operation in (op for op in documented_operations(app) if op.bodies):
        for label, (content_type, content) in cases.items():
            response = await client.request(
                operation.method,
                operation.url(session_id),
                content=content,
                headers={**headers, "Content-Type": content_type},
            )
            findings.check(f"{operation.method} {operation.path} {label}", response, expected_field="body")

    assert findings.problems == [], "\n".join(findings.problems)
    assert findings.requests > 50
    assert (await client.get("/api/v1/users/me", headers=headers)).status_code == 200
