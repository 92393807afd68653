"""The image's prestart step, ``parley migrate --wait N``, against a real PostgreSQL: it waits
for a database that is not up yet, gives up after the bound with one clear line, and is safe
when several replicas run it at once or when it runs twice."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import psycopg
import pytest
from tests.fakes.tcp_proxy import CuttableProxy

from parley.adapters.outbound.postgres import probe
from parley.adapters.outbound.postgres.migrate import MIGRATIONS_DIR, head_revision
from parley.ports.persistence import StorageUnavailable

pytestmark = pytest.mark.integration

REPLICAS = 4


def _migration_lock_key() -> int:
    """The advisory-lock key ``migrations/env.py`` takes around every upgrade."""
    found = re.search(r"^MIGRATION_LOCK_KEY = ([\d_]+)$", (MIGRATIONS_DIR / "env.py").read_text(), re.M)
    assert found is not None, "migrations/env.py no longer names MIGRATION_LOCK_KEY"
    return int(found.group(1))


def _parley_migrate(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "parley.cli", "migrate", *arguments]


def _environment(url: str, tmp_path: Path) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "APP_ENV"}}
    environment.update(POSTGRES_URL=url, DATA_DIR=str(tmp_path), LOG_JSON="false")
    return environment


def _free_port() -> int:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        return int(listener.getsockname()[1])


def _waiting_for_advisory_locks(connection: psycopg.Connection[tuple[int]]) -> int:
    row = connection.execute(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    ).fetchone()
    assert row is not None
    return row[0]


def test_replicas_migrating_at_once_end_with_one_schema_and_no_error(
    create_database: Callable[[], str], tmp_path: Path
) -> None:
    url = create_database()
    key = _migration_lock_key()
    environment = _environment(url, tmp_path)
    with psycopg.connect(url, autocommit=True) as holder:
        # Hold the migration lock so that every replica reaches the upgrade before any runs it:
        # they then really contend for the schema instead of happening to run one after another.
        holder.execute("SELECT pg_advisory_lock(%s)", (key,))
        replicas = [
            subprocess.Popen(
                _parley_migrate("--wait", "60"),
                env=environment,
                cwd=tmp_path,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(REPLICAS)
        ]
        deadline = time.monotonic() + 240
        while _waiting_for_advisory_locks(holder) < REPLICAS:
            exited = [replica.poll() for replica in replicas if replica.poll() is not None]
            assert not exited, f"a replica exited before reaching the lock: {exited}"
            assert time.monotonic() < deadline, "the replicas never all waited for the migration lock"
            time.sleep(0.1)
        holder.execute("SELECT pg_advisory_unlock(%s)", (key,))

    outcomes = [replica.communicate(timeout=240) for replica in replicas]
    for replica, (out, err) in zip(replicas, outcomes, strict=True):
        assert replica.returncode == 0, err
        assert "Database migrated to the newest revision." in out
        assert "Traceback" not in err
    with psycopg.connect(url) as connection:
        versions = connection.execute("SELECT version_num FROM alembic_version").fetchall()
        found = connection.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        tables = {row[0] for row in found}
    assert versions == [(head_revision(),)]
    assert {"users", "auth_sessions", "conversations", "messages"} <= tables

    again = subprocess.run(
        _parley_migrate("--wait", "60"),
        env=environment,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert again.returncode == 0, again.stderr


def test_an_unreachable_database_fails_after_the_bound_with_one_clear_line(tmp_path: Path) -> None:
    port = _free_port()
    url = f"postgresql://parley:s3cret@127.0.0.1:{port}/parley"
    started = time.monotonic()

    result = subprocess.run(
        _parley_migrate("--wait", "2"),
        env=_environment(url, tmp_path),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )

    assert time.monotonic() - started >= 2  # it did wait for the bound
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    last_line = result.stderr.strip().splitlines()[-1]
    shown = f"postgresql://parley:***@127.0.0.1:{port}/parley"  # the password never shows
    assert last_line.startswith(f"Cannot reach the database at {shown}: ")
    assert last_line.endswith("(gave up after waiting 2s)")
    assert "s3cret" not in result.stderr


async def test_waiting_ends_as_soon_as_the_database_answers(
    postgres_server_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy = CuttableProxy(postgres_server_url)
    await proxy.start()
    await proxy.cut()  # the database's port refuses connections, as while its container starts
    attempts = 0
    real_attempt: Callable[..., Awaitable[None]] = probe.ensure_reachable

    async def counted_attempt(url: str, *, timeout: float) -> None:
        nonlocal attempts
        attempts += 1
        await real_attempt(url, timeout=timeout)

    monkeypatch.setattr(probe, "ensure_reachable", counted_attempt)
    waiting = asyncio.create_task(probe.wait_until_reachable(proxy.url, within=300))
    try:
        while attempts < 2:  # at least one attempt was refused and retried
            assert not waiting.done(), waiting
            await asyncio.sleep(0.05)
        await proxy.restore()
        await asyncio.wait_for(waiting, timeout=120)
    finally:
        waiting.cancel()
        await proxy.cut()


async def test_no_wait_tries_once() -> None:
    with pytest.raises(StorageUnavailable, match=r"^Cannot reach the database at .*[^)]$"):
        await probe.wait_until_reachable(f"postgresql://postgres@127.0.0.1:{_free_port()}/x", within=0)
