"""The ``Tracer`` / ``TurnTrace`` contract, for the recording fake, the no-op and the Langfuse tracer.

The port promises that tracing never raises into the caller, whatever it is
given and in whatever order, and that every ``TurnTrace`` method returns ``None``.
The Langfuse tracer runs against a local stand-in for the Langfuse host.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from parley.adapters.outbound.langfuse import LangfuseTracer, NoopTracer
from parley.ports.tracing import Tracer, TurnTrace
from tests.fakes.langfuse_server import FakeLangfuseServer
from tests.fakes.tracing import RecordingTracer

pytestmark = pytest.mark.contract

T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
CLOSE_BOUND = 5.0  # seconds; the Langfuse tracer's flush_timeout below is 2


@pytest.fixture(scope="module")
def langfuse_host() -> Iterator[str]:
    with FakeLangfuseServer() as server:
        yield server.url


def _langfuse(host: str) -> Tracer:
    # A fresh public key per tracer: the SDK keeps one client state per key.
    return LangfuseTracer(f"pk-lf-{uuid.uuid4().hex}", "sk-lf-test", host, flush_timeout=2.0)


TRACERS: dict[str, Callable[[str], Tracer]] = {
    "recording": lambda _host: RecordingTracer(),
    "noop": lambda _host: NoopTracer(),
    "langfuse": _langfuse,
}


@pytest.fixture(params=list(TRACERS))
async def tracer(request: pytest.FixtureRequest, langfuse_host: str) -> AsyncIterator[Tracer]:
    made = TRACERS[request.param](langfuse_host)
    yield made
    await made.aclose()


def _start(
    tracer: Tracer, *, input_text: str = "What's the weather?", started_at: datetime = T0
) -> TurnTrace:
    return tracer.start_turn(
        user_id=uuid.uuid4(),
        conversation_id=uuid.uuid4(),
        input_text=input_text,
        streaming=True,
        started_at=started_at,
    )


def _full_turn(turn: TurnTrace) -> None:
    """Every documented call once, in a realistic order."""
    turn.generation(
        model="gpt-4o-mini",
        prompt_tokens=12,
        completion_tokens=7,
        started_at=T0,
        first_token_at=T0 + timedelta(milliseconds=300),
        ended_at=T0 + timedelta(seconds=1),
        output="Let me check.",
    )
    turn.tool(name="weather", arguments={"city": "Oslo"}, result="4°C, rain", at=T0 + timedelta(seconds=1))
    turn.retry(model="gpt-4o-mini", attempt=1, reason="rate_limited")
    turn.error(kind="AgentTimeout", model="gpt-4o-mini")
    turn.end(status="failed", output="", ended_at=T0 + timedelta(seconds=3))


def _circular() -> dict[str, Any]:
    arguments: dict[str, Any] = {"name": "loop"}
    arguments["self"] = arguments
    return arguments


async def _closes_in_time(tracer: Tracer) -> bool:
    """``aclose()`` is bounded: it returns (without raising) well within ``CLOSE_BOUND``."""
    await asyncio.wait_for(tracer.aclose(), timeout=CLOSE_BOUND)
    return True


# Each test's first oracle is the contract itself: none of the calls raises.
# Each then checks that the tracer still closes, in bounded time, after what it was given.


async def test_every_documented_call_is_accepted(tracer: Tracer) -> None:
    _full_turn(_start(tracer))

    assert await _closes_in_time(tracer)


async def test_odd_inputs_never_raise(tracer: Tracer) -> None:
    naive = datetime(2025, 1, 1, 12, 0)
    turn = _start(tracer, input_text="", started_at=naive)

    turn.generation(
        model="",
        prompt_tokens=-1,
        completion_tokens=10**30,
        started_at=T0 + timedelta(hours=1),  # ends before it starts
        first_token_at=T0 + timedelta(days=1),
        ended_at=T0,
        output="\x00\ud800 🦜 " + "x" * 1_000_000,  # NUL, a lone surrogate, an emoji, 1 MB
    )
    turn.generation(
        model="m",
        prompt_tokens=0,
        completion_tokens=0,
        started_at=naive,
        first_token_at=None,
        ended_at=naive,
        output="",
    )
    turn.tool(
        name="",
        arguments={"blob": b"\xff\xfe", "when": T0, "set": {1, 2}, "obj": object(), "cycle": _circular()},
        result="",
        at=naive,
    )
    turn.tool(name="t" * 10_000, arguments={}, result="r" * 100_000, at=T0)
    turn.retry(model="", attempt=-1, reason="")
    turn.error(kind="", model=None)
    turn.end(status="not-a-status", output="\x00", ended_at=naive)

    assert await _closes_in_time(tracer)


async def test_calls_after_end_and_a_second_end_never_raise(tracer: Tracer) -> None:
    turn = _start(tracer)
    _full_turn(turn)

    _full_turn(turn)

    assert await _closes_in_time(tracer)


async def test_aclose_twice_and_turns_after_aclose_never_raise(tracer: Tracer) -> None:
    assert await _closes_in_time(tracer)
    assert await _closes_in_time(tracer)

    _full_turn(_start(tracer))


async def test_concurrent_interleaved_turns_never_raise(tracer: Tracer) -> None:
    async def one_turn(index: int) -> None:
        turn = _start(tracer, input_text=f"question {index}")
        await asyncio.sleep(0)  # let the other turns interleave with this one
        _full_turn(turn)

    await asyncio.gather(*(one_turn(i) for i in range(20)))

    assert await _closes_in_time(tracer)
