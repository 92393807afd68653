"""Shared fixtures: where the real PostgreSQL comes from.

Order (first that works wins):
1. ``PARLEY_TEST_DATABASE_URL`` (CI points it at the machine's server);
2. testcontainers, when a Docker daemon answers;
3. the embedded PostgreSQL from the ``pgserver`` wheel (works offline, as root).

Each test module that needs a database asks ``create_database()`` for a fresh,
uniquely named one, so modules never see each other's rows.
"""

from __future__ import annotations

import gc
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest


def _docker_answers() -> bool:
    try:
        import docker  # testcontainers' dependency

        client = docker.from_env(timeout=2)
        client.ping()
        return True
    except Exception:
        return False


def _with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, parts.fragment))


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """A libpq URL (``postgresql://…``) of a server we may create databases on."""
    explicit = os.environ.get("PARLEY_TEST_DATABASE_URL")
    if explicit:
        yield explicit.replace("postgresql+psycopg://", "postgresql://")
        return
    if _docker_answers():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:16-alpine", driver=None) as container:
            yield container.get_connection_url()
        return
    from pgserver.postgres_server import get_server

    # A short path: the server's unix socket lives in the data folder (108-byte limit).
    datadir = tempfile.mkdtemp(prefix="parley-pg-")
    server = get_server(datadir, cleanup_mode="stop")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()
        shutil.rmtree(datadir, ignore_errors=True)


@pytest.fixture(scope="session")
def create_database(postgres_server_url: str) -> Iterator[Callable[[], str]]:
    """Factory: creates an empty, uniquely named database and returns its libpq URL."""
    created: list[str] = []

    def create() -> str:
        name = f"parley_test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(postgres_server_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        created.append(name)
        return _with_database(postgres_server_url, name)

    yield create
    with psycopg.connect(postgres_server_url, autocommit=True) as conn:
        for name in created:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def restored_gc() -> Iterator[None]:
    """Undo what a test does to this process's garbage collector (thresholds, frozen objects)."""
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)
