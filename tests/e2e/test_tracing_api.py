"""Langfuse wiring through the whole app: keys set -> one trace per chat turn, tagged with the
user and the session, flushed to a local stand-in for the Langfuse host when the app stops."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from parley.main import create_app
from tests.e2e.conftest import make_settings, signed_up
from tests.e2e.test_auth_api import new_email
from tests.e2e.test_chat_api import CHAT, new_session, send
from tests.fakes.langfuse_server import FakeLangfuseServer

pytestmark = pytest.mark.e2e


async def test_each_chat_turn_becomes_a_trace_flushed_at_shutdown(
    e2e_database_url: str, tmp_path: Path
) -> None:
    with FakeLangfuseServer() as langfuse:
        settings = make_settings(
            e2e_database_url,
            tmp_path,
            observability={
                "langfuse_public_key": "pk-lf-test",
                "langfuse_secret_key": "sk-lf-test",
                "langfuse_host": langfuse.url,
            },
        )
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
                headers = await signed_up(client, new_email())
                user_id = (await client.get("/api/v1/users/me", headers=headers)).json()["id"]
                session_id = (await new_session(client, headers))["id"]
                assert (await send(client, headers, session_id, "what is 6*7")).status_code == 200
                stream = await client.post(
                    f"{CHAT}/{session_id}/messages/stream", headers=headers, json={"content": "thanks"}
                )
                assert stream.status_code == 200
        # The lifespan has ended: the tracer flushed what it buffered.
        spans = langfuse.wait_for_spans(1, timeout=5)

    traces: dict[str, list[dict[str, object]]] = {}
    for span in spans:
        traces.setdefault(span.trace_id, []).append(span.attributes)
    assert len(traces) == 2  # one trace per turn
    for attributes in traces.values():
        assert all(a.get("user.id") == user_id for a in attributes)
        assert all(a.get("session.id") == session_id for a in attributes)
    types = [a.get("langfuse.observation.type") for attrs in traces.values() for a in attrs]
    assert "generation" in types
    assert "tool" in types  # the calculator call of the first turn
