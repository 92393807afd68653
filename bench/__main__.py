"""``uv run just bench [scenario ...]``: Parley against a local fake model.

Scenarios: turns, ttft, slow, abandon, logins (default: these), workers (the turns
scenario with one, then two, worker processes) and memory (turns and ttft with long-term
memory off and on, alternately). Set PARLEY_BENCH_DATABASE_URL to use an
existing PostgreSQL (a fresh database is advisable); otherwise an embedded one is started here,
on the load generator's core, in a temporary folder.
Results are printed and written to bench/results/latest.json.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from contextlib import ExitStack
from pathlib import Path

from bench import scenarios
from bench.harness import embedded_database, running_servers

SCENARIOS = {
    "turns": scenarios.non_streamed_turns,
    "ttft": scenarios.first_token_overhead,
    "slow": scenarios.slow_streams,
    "abandon": scenarios.abandoned_stream,
}
# Scenarios that need a server configured differently run on one of their own.
SEPARATE = {"logins": (scenarios.health_during_logins, {"BCRYPT_ROUNDS": "12", "BCRYPT_WORKERS": "4"})}
# Scenarios that start their own servers.
OWN_SERVERS = {"workers": scenarios.one_versus_two_workers, "memory": scenarios.memory_on_versus_off}


def main(argv: list[str]) -> None:
    # The load generator shares CPU 1 with the fake model: CPU 0 is the server's alone.
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {1})
    known = [*SCENARIOS, *SEPARATE, *OWN_SERVERS]
    chosen = argv or [*SCENARIOS, *SEPARATE]  # `workers`, `memory` take minutes: only when asked for
    unknown = [name for name in chosen if name not in known]
    if unknown:
        raise SystemExit(f"unknown scenario(s) {unknown}; choose from {known}")
    with ExitStack() as stack:
        database_url = os.environ.get("PARLEY_BENCH_DATABASE_URL") or stack.enter_context(embedded_database())
        results = run(chosen, database_url)
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "latest.json").write_text(json.dumps(results, indent=2))


def run(chosen: list[str], database_url: str) -> dict[str, object]:
    results: dict[str, object] = {}
    shared = [name for name in chosen if name in SCENARIOS]
    if shared:
        with running_servers(database_url) as servers:
            for name in shared:
                results[name] = asyncio.run(SCENARIOS[name](servers))
                print(f"{name}: {json.dumps(results[name])}", flush=True)
    for name in (name for name in chosen if name in SEPARATE):
        scenario, env = SEPARATE[name]
        with running_servers(database_url, **env) as servers:
            results[name] = asyncio.run(scenario(servers))
            print(f"{name}: {json.dumps(results[name])}", flush=True)
    for name in (name for name in chosen if name in OWN_SERVERS):
        results[name] = OWN_SERVERS[name](database_url)
        print(f"{name}: {json.dumps(results[name])}", flush=True)
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
