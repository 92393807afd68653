"""Start the fake model and a Parley server as separate processes, and talk to them.

Parley runs pinned to CPU 0 (one core, as the issue asks); the fake model and the
load generator share the other core.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
PASSWORD = "Bench!Passw0rd"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pin(*cpus: int) -> None:
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > max(cpus):
        os.sched_setaffinity(0, set(cpus))


def _wait_until_up(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1.0).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up within {timeout:.0f}s")


@dataclass
class Servers:
    parley_url: str
    fake_url: str
    parley_pid: int

    def rss_mb(self) -> float:
        """Resident memory of the Parley server process, in MiB."""
        status = Path(f"/proc/{self.parley_pid}/status").read_text()
        line = next(row for row in status.splitlines() if row.startswith("VmRSS:"))
        return int(line.split()[1]) / 1024

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the Parley server has used so far: its process and, with
        ``--workers``, every worker process under it."""
        return sum(_cpu_seconds(pid) for pid in _process_tree(self.parley_pid))

    def configure_fake(self, **config: float) -> None:
        httpx.post(f"{self.fake_url}/_config", json=config, timeout=5).raise_for_status()

    def fake_stats(self) -> dict[str, object]:
        return httpx.get(f"{self.fake_url}/_stats", timeout=5).json()  # type: ignore[no-any-return]


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:  # it ended meanwhile
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (uvicorn's supervisor, its workers and their helpers)."""
    tree, index = [pid], 0
    while index < len(tree):
        try:
            children = Path(f"/proc/{tree[index]}/task/{tree[index]}/children").read_text().split()
        except FileNotFoundError:
            children = []
        tree.extend(int(child) for child in children)
        index += 1
    return tree


@contextmanager
def embedded_database() -> Iterator[str]:
    """A throw-away embedded PostgreSQL started by *this* process, so it runs on the load
    generator's core: started by Parley, it would inherit (and share) the server's core."""
    from parley.adapters.outbound.postgres.embedded import EmbeddedPostgres

    with tempfile.TemporaryDirectory(prefix="parley-bench-db-") as folder:
        database = EmbeddedPostgres(Path(folder) / "postgres")
        try:
            yield database.start()
        finally:
            database.stop()


@contextmanager
def running_servers(
    database_url: str | None,
    *,
    workers: int = 1,
    server_cpus: frozenset[int] = frozenset({0}),
    **env_overrides: str,
) -> Iterator[Servers]:
    """The fake model (on CPU 1) and ``parley serve --workers workers`` on ``server_cpus``."""
    fake_port, parley_port = free_port(), free_port()
    fake = subprocess.Popen(
        [sys.executable, "-m", "bench.fake_llm", str(fake_port)], cwd=REPO, preexec_fn=lambda: _pin(1)
    )
    data_dir = tempfile.mkdtemp(prefix="parley-bench-")
    env = {
        **os.environ,
        "APP_ENV": "development",
        "DATA_DIR": data_dir,
        "LLM_API_KEY": "bench-key",
        "LLM_BASE_URL": f"http://127.0.0.1:{fake_port}/v1",
        "LLM_MODEL": "bench-model",
        "RATE_LIMIT_ENABLED": "false",
        "BCRYPT_ROUNDS": "4",
        "LOG_LEVEL": "WARNING",
        "LLM_TIMEOUT_SECONDS": "120",
        # The database pools keep their defaults (10 connections each, no overflow, 5 s wait):
        # a burst of 1,000 streams must be served with them.
    }
    env.update(env_overrides)
    if database_url:
        env["POSTGRES_URL"] = database_url
        env["MIGRATE_ON_START"] = "true"
    parley = subprocess.Popen(
        [sys.executable, "-m", "parley.cli", "serve", "--port", str(parley_port), "--workers", str(workers)],
        cwd=REPO,
        env=env,
        preexec_fn=lambda: _pin(*server_cpus),
    )
    try:
        fake_url, parley_url = f"http://127.0.0.1:{fake_port}", f"http://127.0.0.1:{parley_port}"
        _wait_until_up(f"{fake_url}/_stats")
        _wait_until_up(f"{parley_url}/health", timeout=120)  # workers start one after another
        yield Servers(parley_url=parley_url, fake_url=fake_url, parley_pid=parley.pid)
    finally:
        for process in (parley, fake):
            process.terminate()
        for process in (parley, fake):
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


def sign_up(base_url: str) -> dict[str, str]:
    """A fresh user's Authorization header."""
    email = f"bench-{uuid.uuid4().hex[:12]}@example.com"
    with httpx.Client(base_url=base_url, timeout=30) as client:
        client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD}).raise_for_status()
        tokens = client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD}).json()
    return {"Authorization": f"Bearer {tokens['access_token']}"}


async def create_sessions(client: httpx.AsyncClient, headers: dict[str, str], count: int) -> list[str]:
    ids = []
    for _ in range(count):
        response = await client.post("/api/v1/chat/sessions", headers=headers, json={"name": "bench"})
        response.raise_for_status()
        ids.append(response.json()["id"])
    return ids
