"""The ``parley`` command: migrate a real database; refuse bad configuration clearly."""

from __future__ import annotations

from collections.abc import Callable

import psycopg
import pytest
from typer.testing import CliRunner

from parley.cli import app

pytestmark = pytest.mark.integration


def test_migrate_creates_the_schema(
    create_database: Callable[[], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = create_database()
    monkeypatch.setenv("POSTGRES_URL", url)

    result = CliRunner().invoke(app, ["migrate"])

    assert result.exit_code == 0, result.output
    with psycopg.connect(url) as conn:
        tables = {
            row[0] for row in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        }
    assert {"users", "auth_sessions", "conversations", "messages"} <= tables


def test_a_refused_configuration_exits_with_its_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.delenv("JWT_SECRET_KEY", raising=False)
    monkeypatch.delenv("POSTGRES_URL", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)

    result = CliRunner().invoke(app, ["serve"])

    assert result.exit_code == 2
    assert "JWT_SECRET_KEY is required" in result.output
    assert "Traceback" not in result.output
