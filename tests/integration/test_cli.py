"""The ``parley`` command: migrate a real database; refuse bad configuration clearly; serve
with the HTTP protocol that bounds request heads."""

from __future__ import annotations

import asyncio
import pickle
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner

from parley import __version__
from parley.adapters.inbound.http.server_protocol import HeaderTimeoutHttpToolsProtocol
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


async def _no_app(scope: Any, receive: Any, send: Any) -> None:
    raise AssertionError("not called")


def _uvicorn_options_of_serve(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, *arguments: str, **environment: str
) -> dict[str, Any]:
    """What ``parley serve <arguments>`` hands to ``uvicorn.run`` (which is not run)."""
    import uvicorn

    options: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda target, **given: options.update(given, target=target))
    monkeypatch.setattr("parley.log_setup.configure_logging", lambda **_: None)
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    for name, value in environment.items():
        monkeypatch.setenv(name, value)

    result = CliRunner().invoke(app, ["serve", *arguments])

    assert result.exit_code == 0, result.output
    return options


def test_serve_gives_workers_time_to_start_and_streams_time_to_drain(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    options = _uvicorn_options_of_serve(monkeypatch, tmp_path, SHUTDOWN_GRACE_SECONDS="12")

    # uvicorn's 5 s default killed workers still importing on a loaded machine.
    assert options["timeout_worker_healthcheck"] >= 30
    # Streams drain for the grace period; uvicorn gives them a little longer to say so.
    assert options["timeout_graceful_shutdown"] == 12 + 5


def test_serve_gives_uvicorn_the_header_bound_protocol_every_worker_can_rebuild(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import uvicorn
    from uvicorn.server import ServerState

    options = _uvicorn_options_of_serve(
        monkeypatch, tmp_path, "--workers", "2", HTTP_HEADER_TIMEOUT_SECONDS="7.5"
    )

    assert options["workers"] == 2
    # Each worker process gets uvicorn's config pickled; the protocol must survive that.
    factory = pickle.loads(pickle.dumps(options["http"]))
    loop = asyncio.new_event_loop()
    try:
        protocol = factory(
            config=uvicorn.Config(app=_no_app), server_state=ServerState(), app_state={}, _loop=loop
        )
    finally:
        loop.close()
    assert isinstance(protocol, HeaderTimeoutHttpToolsProtocol)
    assert protocol.header_timeout == 7.5


def test_web_concurrency_sets_the_worker_count_and_the_option_wins(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The image sets its worker count with WEB_CONCURRENCY (deploy/Dockerfile).
    assert _uvicorn_options_of_serve(monkeypatch, tmp_path, WEB_CONCURRENCY="3")["workers"] == 3
    options = _uvicorn_options_of_serve(monkeypatch, tmp_path, "--workers", "2", WEB_CONCURRENCY="3")
    assert options["workers"] == 2


def test_version_option_prints_the_version() -> None:
    result = CliRunner().invoke(app, ["--version"])

    assert result.exit_code == 0
    assert result.output == f"parley {__version__}\n"


# Modules that take seconds to import without cached bytecode. uvicorn's spawned workers
# re-import the command's module before they can answer the supervisor's health pings.
_HEAVY_MODULES = ("uvicorn", "fastapi", "sqlalchemy", "langgraph", "langchain_core", "openai", "langfuse")


def _modules_loaded_by(code: str) -> list[str]:
    """Run ``code`` in a fresh interpreter; which of the heavy modules did it import?"""
    probe = f"{code}\nimport sys\nprint(','.join(m for m in {_HEAVY_MODULES!r} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return [name for name in result.stdout.strip().split(",") if name]


def test_the_command_imports_nothing_heavy_before_it_runs() -> None:
    assert _modules_loaded_by("import parley.cli") == []


def test_building_the_app_does_not_import_the_agent_or_tracing_libraries(tmp_path: Path) -> None:
    code = (
        "from parley.config import Settings\n"
        "from parley.main import create_app\n"
        "create_app(Settings(_env_file=None, auth={'jwt_secret_key': 'k' * 40}, "
        f"data_dir={str(tmp_path)!r}))"
    )

    assert set(_modules_loaded_by(code)) & {"langgraph", "langchain_core", "openai", "langfuse"} == set()


@pytest.mark.parametrize("command", ["serve", "migrate"])
def test_an_unreachable_database_stops_the_command_with_one_line_naming_it(
    command: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POSTGRES_URL", "postgresql://parley:s3cret-pw@127.0.0.1:1/parley")

    result = CliRunner().invoke(app, [command])

    assert result.exit_code == 1
    output = result.output.strip()
    assert output.startswith("Cannot reach the database at postgresql://parley:***@127.0.0.1:1/parley: ")
    assert "\n" not in output
    assert "s3cret-pw" not in result.output
    assert "Traceback" not in result.output


def test_migrate_help_shows_plain_text_and_a_command_that_exists() -> None:
    result = CliRunner().invoke(app, ["migrate", "--help"])

    assert result.exit_code == 0
    assert "``" not in result.output
    assert "uv run alembic downgrade -1" in result.output
