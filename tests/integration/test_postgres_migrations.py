"""Alembic migrations against a real PostgreSQL: up, down, up again, and in step with the tables."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine as create_sync_engine

from parley.adapters.outbound.postgres.engine import to_async_url
from parley.adapters.outbound.postgres.migrate import (
    downgrade,
    head_revision,
    upgrade_to_head,
    upgrade_to_head_async,
)
from parley.adapters.outbound.postgres.tables import metadata

pytestmark = pytest.mark.integration

APP_TABLES = {"users", "auth_sessions", "conversations", "messages"}
REPO_ROOT = Path(__file__).resolve().parents[2]


def tables_in(url: str) -> set[str]:
    with psycopg.connect(url) as connection:
        rows = connection.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchall()
    return {name for (name,) in rows}


def current_revision(url: str) -> str | None:
    with psycopg.connect(url) as connection:
        row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    return None if row is None else str(row[0])


def test_upgrade_downgrade_upgrade_creates_drops_and_recreates_the_schema(
    create_database: Callable[[], str],
) -> None:
    url = create_database()

    upgrade_to_head(url)
    assert tables_in(url) >= APP_TABLES
    assert current_revision(url) == head_revision()

    downgrade(url, "base")
    assert tables_in(url) & APP_TABLES == set()
    assert current_revision(url) is None

    upgrade_to_head(url)
    assert tables_in(url) >= APP_TABLES


def test_upgrading_twice_is_a_no_op(create_database: Callable[[], str]) -> None:
    url = create_database()
    upgrade_to_head(url)
    upgrade_to_head(url)

    assert current_revision(url) == head_revision()


async def test_async_upgrade_works_from_inside_an_event_loop(create_database: Callable[[], str]) -> None:
    url = create_database()

    await upgrade_to_head_async(url)

    assert tables_in(url) >= APP_TABLES


def test_migrations_match_the_table_definitions(create_database: Callable[[], str]) -> None:
    url = create_database()
    upgrade_to_head(url)
    engine = create_sync_engine(to_async_url(url))  # the psycopg dialect runs sync too
    try:
        with engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), metadata)
    finally:
        engine.dispose()

    assert differences == []


def test_the_alembic_command_line_reads_database_url(create_database: Callable[[], str]) -> None:
    url = create_database()
    environment = {**os.environ, "DATABASE_URL": url}
    environment.pop("POSTGRES_URL", None)

    subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head"],
        cwd=REPO_ROOT,
        env=environment,
        check=True,
        capture_output=True,
        timeout=60,
    )

    assert current_revision(url) == head_revision()
