"""The ``parley`` command: ``serve`` the API, ``migrate`` a database, ``eval`` the agent.

This module is imported by every worker process ``parley serve --workers N`` starts
(multiprocessing's *spawn* re-imports the parent's main module before the worker can
answer uvicorn's health pings), and by ``parley --help``. So it imports only typer at
module level: settings, uvicorn and the application are imported inside the commands
that use them. ``tests/integration/test_cli.py`` holds it to that.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer

from parley import __version__
from parley.cli_eval import eval_app

if TYPE_CHECKING:
    from parley.config import Settings

app = typer.Typer(help="Parley: a chat-agent backend.", no_args_is_help=True, add_completion=False)
app.add_typer(eval_app, name="eval")  # parley.cli_eval: evaluation and report comparison

# How long uvicorn's supervisor waits for a worker to answer a health ping (and, on SIGHUP,
# for a new worker to be ready) before it kills it. uvicorn's default (5 s) is shorter than
# a worker's start-up on a loaded machine without cached bytecode, where workers were
# killed and restarted in a loop.
WORKER_HEALTHCHECK_SECONDS = 60
SHUTDOWN_MARGIN_SECONDS = 5


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"parley {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_show_version, is_eager=True, help="Show the version and exit."),
    ] = False,
) -> None:
    """Parley: a chat-agent backend."""


@contextmanager
def _stop_if_database_unreachable() -> Iterator[None]:
    """Stop with one line naming the database (no password) when it cannot be reached."""
    from parley.ports.persistence import StorageUnavailable

    try:
        yield
    except StorageUnavailable as unreachable:
        typer.secho(str(unreachable), fg=typer.colors.RED, err=True)
        raise typer.Exit(code=1) from None


def _settings() -> Settings:
    from parley.config import ConfigurationError, load_settings

    try:
        return load_settings()
    except ConfigurationError as invalid:
        typer.secho(str(invalid), fg=typer.colors.RED, err=True)
        raise typer.Exit(code=2) from None


def server_options(settings: Settings) -> dict[str, Any]:
    """The uvicorn options that shape how ``parley serve`` handles each connection.

    The HTTP protocol is always uvicorn's httptools one, with a bound on request heads
    (:mod:`parley.adapters.inbound.http.server_protocol`): ``--http`` is not offered, since
    the bound exists only there. The end-to-end tests serve the app with these options.
    """
    from parley.adapters.inbound.http.server_protocol import header_timeout_protocol

    protocol = header_timeout_protocol(settings.http.header_timeout_seconds)
    return {
        # uvicorn's annotation asks for a class; it only ever calls it (server.py, create_protocol).
        "http": cast("type[asyncio.Protocol]", protocol),
        "log_config": None,
        "access_log": False,  # the app writes its own access line, with the request id
        "proxy_headers": False,
        # Streams drain for SHUTDOWN_GRACE_SECONDS, then need a moment to store and say so.
        "timeout_graceful_shutdown": math.ceil(settings.http.shutdown_grace_seconds)
        + SHUTDOWN_MARGIN_SECONDS,
    }


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default: HOST or 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: PORT or 8000)")] = None,
    reload: Annotated[bool, typer.Option(help="Restart on code changes (development)")] = False,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            envvar="WEB_CONCURRENCY",
            help="Worker processes; for metrics set PROMETHEUS_MULTIPROC_DIR (README)",
        ),
    ] = 1,
) -> None:
    """Serve the API. With no database URL in development, an embedded PostgreSQL is started."""
    import uvicorn

    from parley.bootstrap import check_database
    from parley.log_setup import configure_logging

    settings = _settings()
    configure_logging(level=settings.observability.log_level, json_lines=settings.json_logs)
    with _stop_if_database_unreachable():
        asyncio.run(check_database(settings))
    uvicorn.run(
        "parley.main:create_served_app",  # sets up logging in each worker process too
        factory=True,
        host=host or settings.http.host,
        port=port or settings.http.port,
        reload=reload,
        workers=workers,
        timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS,
        **server_options(settings),
    )


@app.command()
def migrate(
    wait: Annotated[
        float,
        typer.Option(min=0, help="Seconds to wait for the database to answer (prestart); 0: try once"),
    ] = 0,
) -> None:
    """Upgrade the database (POSTGRES_URL/DATABASE_URL, else the embedded one) to the newest schema.

    Safe to run twice or from several replicas at once (an advisory lock serialises them).
    To step back a revision, run Alembic with the database's URL:
    DATABASE_URL=postgresql://... uv run alembic downgrade -1
    """
    from parley.bootstrap import migrate_database
    from parley.log_setup import configure_logging

    settings = _settings()
    configure_logging(level=settings.observability.log_level, json_lines=settings.json_logs)
    with _stop_if_database_unreachable():
        asyncio.run(migrate_database(settings, wait_seconds=wait))
    typer.echo("Database migrated to the newest revision.")


if __name__ == "__main__":  # pragma: no cover
    app()
