"""An installed Parley (a wheel, as the image installs it: no source tree beside it) finds its
Alembic migrations inside the package and migrates a real database."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def unpacked_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built from this checkout by its build backend, unpacked as site-packages."""
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-c", f"from hatchling.build import build_wheel; build_wheel({str(out)!r})"],
        cwd=ROOT,
        check=True,
        timeout=120,
    )
    (wheel,) = out.glob("parley-*.whl")
    site = out / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    return site


def _run_installed(site: Path, cwd: Path, *arguments: str, **environment: str) -> str:
    # PYTHONPATH comes before site-packages, so the unpacked wheel's parley shadows the
    # checkout's editable install; cwd is elsewhere, so no migrations/ is found by accident.
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "APP_ENV", "POSTGRES_URL"}}
    env.update(PYTHONPATH=str(site), DATA_DIR=str(cwd), LOG_JSON="false", **environment)
    result = subprocess.run(
        [sys.executable, *arguments], cwd=cwd, env=env, capture_output=True, text=True, timeout=240
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_wheel_carries_the_migrations_and_uses_them(
    unpacked_wheel: Path, tmp_path: Path, create_database: Callable[[], str]
) -> None:
    where = _run_installed(
        unpacked_wheel,
        tmp_path,
        "-c",
        "from parley.adapters.outbound.postgres.migrate import MIGRATIONS_DIR; print(MIGRATIONS_DIR)",
    )
    assert Path(where.strip()) == (unpacked_wheel / "parley" / "migrations").resolve()
    url = create_database()

    _run_installed(unpacked_wheel, tmp_path, "-m", "parley.cli", "migrate", POSTGRES_URL=url)

    with psycopg.connect(url) as connection:
        found = connection.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        tables = {row[0] for row in found}
    assert {"alembic_version", "users", "auth_sessions", "conversations", "messages"} <= tables
