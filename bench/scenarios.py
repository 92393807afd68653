"""The benchmark scenarios of the chat issue, each returning a dict of figures."""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from typing import Any

import aiohttp
import httpx

from bench.harness import Servers, create_sessions, running_servers, sign_up


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


async def non_streamed_turns(
    servers: Servers, *, concurrency: int = 16, seconds: float = 10.0, turns_per_session: int = 10
) -> dict[str, Any]:
    """Whole turns per second at ``concurrency`` against a zero-delay fake model.

    Each worker moves to a new session every ``turns_per_session`` turns, so the context sent
    to the model stays the size of a typical chat instead of growing for the whole run.
    """
    servers.configure_fake(first_token_delay=0, token_delay=0, tokens=16)
    headers = sign_up(servers.parley_url)
    latencies: list[float] = []
    errors = 0
    async with httpx.AsyncClient(base_url=servers.parley_url, timeout=60) as client:
        sessions = await create_sessions(client, headers, concurrency)
        deadline = time.perf_counter() + seconds

        async def worker(session_id: str) -> None:
            nonlocal errors
            turns = 0
            while time.perf_counter() < deadline:
                if turns and turns % turns_per_session == 0:
                    (session_id,) = await create_sessions(client, headers, 1)
                turns += 1
                started = time.perf_counter()
                response = await client.post(
                    f"/api/v1/chat/sessions/{session_id}/messages", headers=headers, json={"content": "hello"}
                )
                if response.status_code != 200:
                    errors += 1
                latencies.append(time.perf_counter() - started)

        started, cpu_before = time.perf_counter(), servers.cpu_seconds()
        await asyncio.gather(*(worker(s) for s in sessions))
        elapsed = time.perf_counter() - started
        server_cpu = servers.cpu_seconds() - cpu_before
    return {
        "concurrency": concurrency,
        "turns_per_session": turns_per_session,
        "turns_per_second": round(len(latencies) / elapsed, 1),
        "turns": len(latencies),
        "errors": errors,
        "latency_p50_ms": round(_percentile(latencies, 0.5) * 1000, 1),
        "latency_p99_ms": round(_percentile(latencies, 0.99) * 1000, 1),
        # Server CPU per turn: steadier than turns/s when other work shares the machine.
        "server_cpu_ms_per_turn": round(1000 * server_cpu / max(1, len(latencies)), 2),
    }


async def _first_token_seconds(client: httpx.AsyncClient, method: str, url: str, **kwargs: Any) -> float:
    """Seconds to the first token; the stream is read to its end (leaving early would abandon the turn)."""
    started = time.perf_counter()
    first: float | None = None
    async with client.stream(method, url, **kwargs) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            is_token = line.startswith("event: token") or (
                line.startswith("data: ") and '"content": "tok' in line
            )
            if first is None and is_token:
                first = time.perf_counter() - started
    if first is None:
        raise RuntimeError("stream ended without a token")
    return first


async def first_token_overhead(
    servers: Servers, *, samples: int = 200, turns_per_session: int = 10
) -> dict[str, Any]:
    """Time to first token through Parley minus the fake model's own, sequential streams.

    As in :func:`non_streamed_turns`, a new session every ``turns_per_session`` turns keeps the
    context chat-sized (one session for all samples would measure a 400-message history).
    """
    servers.configure_fake(first_token_delay=0, token_delay=0, tokens=16)
    headers = sign_up(servers.parley_url)
    direct: list[float] = []
    through: list[float] = []
    body = {"model": "bench-model", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    async with httpx.AsyncClient(base_url=servers.parley_url, timeout=60) as client:
        sessions = await create_sessions(client, headers, -(-samples // turns_per_session))
        for sample in range(samples):
            session_id = sessions[sample // turns_per_session]
            direct.append(
                await _first_token_seconds(
                    client, "POST", f"{servers.fake_url}/v1/chat/completions", json=body
                )
            )
            through.append(
                await _first_token_seconds(
                    client,
                    "POST",
                    f"/api/v1/chat/sessions/{session_id}/messages/stream",
                    headers=headers,
                    json={"content": "hi"},
                )
            )
    overhead = [t - d for t, d in zip(through, direct, strict=True)]
    return {
        "fake_ttft_p50_ms": round(statistics.median(direct) * 1000, 2),
        "parley_ttft_p50_ms": round(statistics.median(through) * 1000, 2),
        "overhead_p50_ms": round(statistics.median(overhead) * 1000, 2),
        "overhead_p90_ms": round(_percentile(overhead, 0.9) * 1000, 2),
    }


async def slow_streams(servers: Servers, *, streams: int = 1000) -> dict[str, Any]:
    """``streams`` concurrent streams: 2 s to first token, 20 ms per token, 64 tokens."""
    servers.configure_fake(first_token_delay=2.0, token_delay=0.02, tokens=64)
    headers = sign_up(servers.parley_url)
    peak_rss = servers.rss_mb()
    async with httpx.AsyncClient(base_url=servers.parley_url, timeout=120) as setup_client:
        sessions = await create_sessions(setup_client, headers, streams)
    # The streams go through aiohttp: with httpx's line reader the load generator needed a
    # whole core for 1,000 streams and, not Parley, set the pace of the last seconds.
    async with aiohttp.ClientSession(
        base_url=servers.parley_url,
        connector=aiohttp.TCPConnector(limit=0),
        timeout=aiohttp.ClientTimeout(total=120),
    ) as client:
        ttfts: list[float] = []
        completed = 0
        stop_sampling = asyncio.Event()

        async def sample_rss() -> None:
            nonlocal peak_rss
            while not stop_sampling.is_set():
                peak_rss = max(peak_rss, servers.rss_mb())
                await asyncio.sleep(0.2)

        async def one(session_id: str, started: float) -> None:
            nonlocal completed
            url = f"/api/v1/chat/sessions/{session_id}/messages/stream"
            async with client.post(url, headers=headers, json={"content": "go"}) as response:
                response.raise_for_status()
                first = True
                async for line in response.content:
                    if first and line.startswith(b"event: token"):
                        ttfts.append(time.perf_counter() - started)
                        first = False
                    if line.startswith(b"event: done"):
                        completed += 1

        sampler = asyncio.create_task(sample_rss())
        started, started_wall, cpu_before = time.perf_counter(), time.time(), servers.cpu_seconds()
        results = await asyncio.gather(*(one(s, started) for s in sessions), return_exceptions=True)
        elapsed = time.perf_counter() - started
        server_cpu = servers.cpu_seconds() - cpu_before
        stop_sampling.set()
        await sampler
    failures = [r for r in results if isinstance(r, BaseException)]
    # When the model requests reached the fake: how fast Parley set the turns up.
    arrivals = [float(t) - started_wall for t in servers.fake_stats()["arrived_at"]]  # type: ignore[attr-defined]
    return {
        "streams": streams,
        "completed": completed,
        "failures": len(failures),
        "first_failure": repr(failures[0]) if failures else None,
        "all_done_seconds": round(elapsed, 2),
        "ttft_p50_s": round(_percentile(ttfts, 0.5), 3),
        "ttft_p99_s": round(_percentile(ttfts, 0.99), 3),
        "model_request_p50_s": round(_percentile(arrivals, 0.5), 3),
        "model_request_last_s": round(max(arrivals, default=0.0), 3),
        "server_peak_rss_mb": round(peak_rss, 1),
        "server_cpu_s": round(server_cpu, 2),
    }


async def abandoned_stream(servers: Servers, *, trials: int = 5) -> dict[str, Any]:
    """A client leaves after the first token: how soon does the fake model see the upstream close?"""
    servers.configure_fake(first_token_delay=0.0, token_delay=0.05, tokens=400)
    headers = sign_up(servers.parley_url)
    delays: list[float] = []
    async with httpx.AsyncClient(base_url=servers.parley_url, timeout=60) as client:
        sessions = await create_sessions(client, headers, trials)
        for session_id in sessions:
            before = len(servers.fake_stats()["abandoned_at"])  # type: ignore[arg-type]
            url = f"/api/v1/chat/sessions/{session_id}/messages/stream"
            async with client.stream("POST", url, headers=headers, json={"content": "go"}) as response:
                async for line in response.aiter_lines():
                    if line.startswith("event: token"):
                        break
            left_at = time.time()
            for _ in range(50):
                abandoned: list[float] = servers.fake_stats()["abandoned_at"]  # type: ignore[assignment]
                if len(abandoned) > before:
                    delays.append(abandoned[-1] - left_at)
                    break
                await asyncio.sleep(0.05)
            else:
                delays.append(float("inf"))
    return {
        "trials": trials,
        "upstream_stopped_within_s_max": round(max(delays), 3),
        "upstream_stopped_within_s_p50": round(statistics.median(delays), 3),
    }


async def health_during_logins(servers: Servers, *, logins: int = 8, rounds: int = 5) -> dict[str, Any]:
    """``/health`` latency while ``logins`` concurrent logins run bcrypt (cost 12) off the event loop."""
    email = f"bench-login-{time.time_ns()}@example.com"
    credentials = {"email": email, "password": "Bench!Passw0rd"}
    async with httpx.AsyncClient(base_url=servers.parley_url, timeout=60) as client:
        (await client.post("/api/v1/auth/register", json=credentials)).raise_for_status()
        idle, busy, login_seconds = [], [], []
        for _ in range(rounds):
            started = time.perf_counter()
            await client.get("/health")
            idle.append(time.perf_counter() - started)
            login_started = time.perf_counter()
            tasks = [
                asyncio.create_task(client.post("/api/v1/auth/login", json=credentials))
                for _ in range(logins)
            ]
            await asyncio.sleep(0.02)
            started = time.perf_counter()
            await client.get("/health")
            busy.append(time.perf_counter() - started)
            await asyncio.gather(*tasks)
            login_seconds.append(time.perf_counter() - login_started)
    return {
        "logins": logins,
        "health_idle_p50_ms": round(statistics.median(idle) * 1000, 1),
        "health_during_logins_p50_ms": round(statistics.median(busy) * 1000, 1),
        "health_during_logins_max_ms": round(max(busy) * 1000, 1),
        "all_logins_seconds_p50": round(statistics.median(login_seconds), 2),
    }


def one_versus_two_workers(database_url: str) -> dict[str, Any]:
    """The ``turns`` scenario against ``parley serve --workers 1`` and then ``--workers 2``, both
    allowed on every core (the fake model and the load generator keep CPU 1 for themselves too,
    so on a 2-core machine the second worker competes with them: this is the whole machine's figure).

    Each worker is a process of its own sharing the database, so two workers should get close to
    twice the turns of one when the CPU, not the database, is the limit.
    """
    every_core = frozenset(range(os.cpu_count() or 1))
    figures: dict[str, Any] = {}
    for workers in (1, 2):
        with running_servers(database_url, workers=workers, server_cpus=every_core) as servers:
            figures[f"workers_{workers}"] = asyncio.run(non_streamed_turns(servers))
    one, two = (figures[f"workers_{n}"]["turns_per_second"] for n in (1, 2))
    figures["speedup"] = round(two / one, 2) if one else float("nan")
    return figures


def memory_on_versus_off(database_url: str, *, rounds: int = 3) -> dict[str, Any]:
    """``turns`` and ``ttft`` with long-term memory off, then on, alternately (``rounds`` times
    each, a fresh server per run, so a drift of the machine hits both alike); the medians, and
    what memory costs: turns/s lost and TTFT overhead added.

    With memory on, every turn recalls the user's facts (one full-text query) before the model
    call, and each session's quick turns are learnt from together (one more, non-streamed
    request to the fake model, which answers one new fact each time: the store is written to,
    and later turns recall, and send, up to MEMORY_RECALL_LIMIT facts). ``MEMORY_LEARN_DELAY_SECONDS`` is 1
    here, not 10: the learning requests then land inside the measured seconds (1 s after each
    session's last turn) instead of after them.
    """
    runs: dict[str, list[dict[str, Any]]] = {"off": [], "on": []}
    for _ in range(rounds):
        for mode in ("off", "on"):
            env = {"MEMORY_ENABLED": "true" if mode == "on" else "false", "MEMORY_LEARN_DELAY_SECONDS": "1"}
            with running_servers(database_url, **env) as servers:
                turns = asyncio.run(non_streamed_turns(servers, seconds=6.0))
                ttft = asyncio.run(first_token_overhead(servers, samples=100))
                learnt = int(servers.fake_stats()["fact_requests"])  # type: ignore[call-overload]
            runs[mode].append({**turns, **ttft, "fact_requests": learnt})
    figures: dict[str, Any] = {}
    for mode, measured in runs.items():
        figures[mode] = {
            key: round(statistics.median(run[key] for run in measured), 2)
            for key in ("turns_per_second", "server_cpu_ms_per_turn", "parley_ttft_p50_ms", "overhead_p50_ms")
        }
        figures[mode]["turns_per_second_runs"] = [run["turns_per_second"] for run in measured]
        figures[mode]["server_cpu_ms_per_turn_runs"] = [run["server_cpu_ms_per_turn"] for run in measured]
        # Extraction requests the fake answered with a fact (each stored): 0 with memory off.
        figures[mode]["fact_requests_runs"] = [run["fact_requests"] for run in measured]
    off, on = figures["off"]["turns_per_second"], figures["on"]["turns_per_second"]
    figures["turns_per_second_cost_percent"] = round(100 * (off - on) / off, 1) if off else float("nan")
    figures["ttft_overhead_added_ms"] = round(
        figures["on"]["overhead_p50_ms"] - figures["off"]["overhead_p50_ms"], 2
    )
    return figures
