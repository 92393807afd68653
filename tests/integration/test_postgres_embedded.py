"""The embedded PostgreSQL (pgserver wheel) that backs the zero-configuration default.

Data folders live directly under the system temp folder, not under pytest's ``tmp_path``:
as root the server runs as the ``pgserver`` user, which must traverse every ancestor, and
each pytest session (ours or a concurrent one) resets ``/tmp/pytest-of-root`` to mode 0700.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from tests.integration.probes import ping

from parley.adapters.outbound.postgres.embedded import EmbeddedPostgres
from parley.adapters.outbound.postgres.engine import create_engine
from parley.adapters.outbound.postgres.migrate import upgrade_to_head
from parley.ports.persistence import StorageUnavailable

pytestmark = pytest.mark.integration


@pytest.fixture
def scratch_dir() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="parley-embedded-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def embedded(scratch_dir: Path) -> Iterator[EmbeddedPostgres]:
    server = EmbeddedPostgres(scratch_dir / "pgdata")
    yield server
    server.stop()


def users_table_exists(url: str) -> bool:
    with psycopg.connect(url) as connection:
        row = connection.execute("SELECT to_regclass('public.users') IS NOT NULL").fetchone()
    return bool(row and row[0])


async def test_starts_and_answers_through_the_async_engine(embedded: EmbeddedPostgres) -> None:
    url = embedded.start()
    engine = create_engine(url, pool_size=1, max_overflow=0, pool_timeout=2)
    try:
        await ping(engine)
    finally:
        await engine.dispose()


def test_data_survives_a_stop_and_restart(embedded: EmbeddedPostgres) -> None:
    upgrade_to_head(embedded.start())
    embedded.stop()
    embedded.stop()  # idempotent

    assert users_table_exists(embedded.start())


async def test_a_stopped_server_is_reported_unavailable(embedded: EmbeddedPostgres) -> None:
    url = embedded.start()
    embedded.stop()
    engine = create_engine(url, pool_size=1, max_overflow=0, pool_timeout=2)
    try:
        with pytest.raises(StorageUnavailable):
            await ping(engine)
    finally:
        await engine.dispose()


def test_a_data_folder_too_deep_for_a_unix_socket_still_works(scratch_dir: Path) -> None:
    deep = scratch_dir / ("d" * 60) / ("e" * 60) / "pgdata"
    assert len(str(deep / ".s.PGSQL.5432")) > 108  # would overflow sockaddr_un.sun_path
    server = EmbeddedPostgres(deep)
    try:
        url = server.start()
        with psycopg.connect(url) as connection:
            assert connection.execute("SELECT 1").fetchone() == (1,)
    finally:
        server.stop()


def test_starting_without_xdg_runtime_dir_warns_about_nothing(scratch_dir: Path) -> None:
    """Containers and CI have no XDG_RUNTIME_DIR; the fallback folder is right, so no warning."""
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from parley.adapters.outbound.postgres.embedded import EmbeddedPostgres\n"
        "server = EmbeddedPostgres(Path(sys.argv[1]))\n"
        "server.start()\n"
        "server.stop()\n"
    )
    environment = {k: v for k, v in os.environ.items() if k != "XDG_RUNTIME_DIR"}

    result = subprocess.run(
        [sys.executable, "-W", "always", "-c", code, str(scratch_dir / "pgdata")],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )

    assert "Warning" not in result.stderr, result.stderr
