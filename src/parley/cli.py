"""The ``parley`` command: ``serve`` the API, ``migrate`` a database."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
import uvicorn

from parley.config import ConfigurationError, Settings, load_settings
from parley.container import migrate_database
from parley.log_setup import configure_logging

app = typer.Typer(help="Parley: a chat-agent backend.", no_args_is_help=True, add_completion=False)


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigurationError as invalid:
        typer.secho(str(invalid), fg=typer.colors.RED, err=True)
        raise typer.Exit(code=2) from None


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default: HOST or 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: PORT or 8000)")] = None,
    reload: Annotated[bool, typer.Option(help="Restart on code changes (development)")] = False,
    workers: Annotated[
        int, typer.Option(min=1, help="Worker processes; for metrics set PROMETHEUS_MULTIPROC_DIR (README)")
    ] = 1,
) -> None:
    """Serve the API. With no database URL in development, an embedded PostgreSQL is started."""
    settings = _settings()
    configure_logging(level=settings.log_level, json_lines=settings.json_logs)
    uvicorn.run(
        "parley.main:create_served_app",  # sets up logging in each worker process too
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        reload=reload,
        workers=workers,
        log_config=None,
        access_log=False,  # the app writes its own access line, with the request id
        proxy_headers=False,
        timeout_graceful_shutdown=10,
    )


@app.command()
def migrate() -> None:
    """Upgrade the database (POSTGRES_URL/DATABASE_URL, else the embedded one) to the newest schema.

    For other revisions use Alembic directly: ``alembic downgrade -1`` (see the justfile).
    """
    settings = _settings()
    configure_logging(level=settings.log_level, json_lines=settings.json_logs)
    asyncio.run(migrate_database(settings))
    typer.echo("Database migrated to the newest revision.")


if __name__ == "__main__":  # pragma: no cover
    app()
