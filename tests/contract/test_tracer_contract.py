"""The ``Tracer`` / ``TurnTrace`` contract, for the recording fake and every adapter.

The port promises that tracing never raises into the caller, whatever events it is
given and in whatever order, and that ``record`` returns ``None``.
The Langfuse tracer runs against a local stand-in for the Langfuse host.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from parley.adapters.outbound.langfuse import LangfuseTracer, NoopTracer
from parley.adapters.outbound.prometheus import PrometheusTracer
from parley.ports.tracing import (
    ModelCalled,
    ModelRetried,
    ToolUsed,
    Tracer,
    TurnEnded,
    TurnFailed,
    TurnStarted,
    TurnTrace,
)
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
    "prometheus": lambda _host: PrometheusTracer(CollectorRegistry()),
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
        TurnStarted(
            user_id=uuid.uuid4(),
            conversation_id=uuid.uuid4(),
            input_text=input_text,
            streaming=True,
            at=started_at,
        )
    )


def _full_turn(turn: TurnTrace) -> None:
    """Every kind of event once, in a realistic order."""
    for event in (
        ModelCalled(
            model="gpt-4o-mini",
            prompt_tokens=12,
            completion_tokens=7,
            started_at=T0,
            first_token_at=T0 + timedelta(milliseconds=300),
            ended_at=T0 + timedelta(seconds=1),
            output="Let me check.",
        ),
        ToolUsed(
            name="weather", arguments={"city": "Oslo"}, result="4°C, rain", at=T0 + timedelta(seconds=1)
        ),
        ModelRetried(model="gpt-4o-mini", attempt=1, reason="rate_limited", at=T0 + timedelta(seconds=2)),
        TurnFailed(kind="AgentTimeout", model="gpt-4o-mini", at=T0 + timedelta(seconds=3)),
        TurnEnded(status="failed", output="", at=T0 + timedelta(seconds=3)),
    ):
        assert turn.record(event) is None  # type: ignore[func-returns-value]


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


async def test_every_kind_of_event_is_accepted(tracer: Tracer) -> None:
    _full_turn(_start(tracer))

    assert await _closes_in_time(tracer)


async def test_odd_inputs_never_raise(tracer: Tracer) -> None:
    naive = datetime(2025, 1, 1, 12, 0)
    turn = _start(tracer, input_text="", started_at=naive)

    for event in (
        ModelCalled(
            model="",
            prompt_tokens=-1,
            completion_tokens=10**30,
            started_at=T0 + timedelta(hours=1),  # ends before it starts
            first_token_at=T0 + timedelta(days=1),
            ended_at=T0,
            output="\x00\ud800 🦜 " + "x" * 1_000_000,  # NUL, a lone surrogate, an emoji, 1 MB
        ),
        ModelCalled(
            model="m",
            prompt_tokens=0,
            completion_tokens=0,
            started_at=naive,
            first_token_at=None,
            ended_at=naive,
            output="",
        ),
        ToolUsed(
            name="",
            arguments={"blob": b"\xff\xfe", "when": T0, "set": {1, 2}, "obj": object(), "cycle": _circular()},
            result="",
            at=naive,
        ),
        ToolUsed(name="t" * 10_000, arguments={}, result="r" * 100_000, at=T0),
        ModelRetried(model="", attempt=-1, reason="", at=naive),
        TurnFailed(kind="", model=None, at=naive),
        TurnEnded(status="not-a-status", output="\x00", at=naive),
    ):
        turn.record(event)

    assert await _closes_in_time(tracer)


async def test_events_after_the_end_and_a_second_end_never_raise(tracer: Tracer) -> None:
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


async def test_a_turns_link_is_none_or_names_its_trace_and_never_changes(tracer: Tracer) -> None:
    first, second = _start(tracer), _start(tracer)

    links = [first.link, second.link]
    _full_turn(first)

    assert first.link == links[0]  # constant through the turn
    if links[0] is None:
        assert links[1] is None  # a tracer without per-turn traces never links
    else:
        assert links[1] is not None
        assert links[0].trace_id
        assert links[0].trace_id != links[1].trace_id
    assert await _closes_in_time(tracer)


async def test_the_langfuse_link_names_the_trace_its_spans_carry() -> None:
    with FakeLangfuseServer() as server:
        tracer = LangfuseTracer(f"pk-lf-{uuid.uuid4().hex}", "sk-lf-test", server.url, flush_timeout=2.0)
        turn = _start(tracer)
        _full_turn(turn)
        await tracer.aclose()
        assert turn.link is not None
        spans = server.wait_for_spans(1)

    assert {span.trace_id for span in spans} == {turn.link.trace_id}
    assert len(turn.link.trace_id) == 32
    assert turn.link.url == f"{server.url}/trace/{turn.link.trace_id}"  # Langfuse redirects to its page
