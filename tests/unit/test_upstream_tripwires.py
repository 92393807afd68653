"""Tripwires: the upstream internals that Parley's overrides rely on (``docs/upstream-overrides.md``).

Each override reaches past a library's public API: it overrides an underscore method, calls
one, or replaces or clears private state. The libraries promise none of it, so pyproject caps
each of them below its next minor version, and these tests check what each override assumes:
the private method is still there with the parameters we pass or accept, the public path we
use still goes through it, and the private state still means what we replace. A failure names
the override, the module it lives in, and points at the list, which says what breaks and how
to move a cap. No network: model and database traffic stays in process.

uvicorn's own tripwires are in ``test_server_protocol_tripwires.py``.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import json
import re
import tomllib
from collections.abc import AsyncIterator, Callable, Iterator, MutableMapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any, TypedDict, cast

import httpx2
import openai
import pytest
from langchain_core.messages import HumanMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from langfuse import Langfuse
from langfuse import __version__ as langfuse_version
from langgraph.checkpoint.base import BaseCheckpointSaver, empty_checkpoint
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Durability
from limits import RateLimitItem
from limits.errors import StorageError
from limits.storage import MemoryStorage
from limits.strategies import FixedWindowRateLimiter, RateLimiter
from openai.types.chat import ChatCompletionChunk
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry
from psycopg_pool import AsyncConnectionPool, PoolClosed
from slowapi import Limiter
from slowapi.errors import RateLimitExceeded
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.requests import Request

from parley.adapters.inbound.http.client_identity import ClientIdentity
from parley.adapters.inbound.http.rate_limits import RateLimitConfig, RateLimitGate, RateLimitMetrics
from parley.adapters.outbound.langgraph.chat_model import LeanChatOpenAI, ModelConfig, build_chat_model
from parley.adapters.outbound.langgraph.checkpoints import SettlingMemorySaver, SettlingPostgresSaver
from parley.adapters.outbound.langgraph.openai_client import StreamingAsyncOpenAI

pytestmark = pytest.mark.unit

REPOSITORY = Path(__file__).resolve().parents[2]
OVERRIDES_LIST = REPOSITORY / "docs" / "upstream-overrides.md"


@dataclass(frozen=True, slots=True)
class Override:
    """One entry of ``docs/upstream-overrides.md``: what overrides which package, and where."""

    name: str
    package: str
    module: str  # under src/parley

    def broken(self, what: str) -> str:
        return (
            f"{self.name} ({self.module}) no longer fits {self.package} {version(self.package)}: {what}. "
            f"See its entry in docs/upstream-overrides.md before moving the cap."
        )

    @contextmanager
    def named_failures(self) -> Iterator[None]:
        """An unexpected error inside becomes a failure that names this override."""
        try:
            yield
        except Exception as error:
            pytest.fail(self.broken(f"it raised {error!r}"))


REQUEST_PAYLOAD = Override(
    "LeanChatOpenAI._get_request_payload", "langchain-openai", "adapters/outbound/langgraph/chat_model.py"
)
CLIENT_SWAP = Override(
    "LeanChatOpenAI._use_streaming_client", "langchain-openai", "adapters/outbound/langgraph/chat_model.py"
)
CHUNKS_AS_DICTS = Override(
    "StreamingAsyncOpenAI._process_response_data", "openai", "adapters/outbound/langgraph/openai_client.py"
)
SSE_SEND = Override("EventStream._send_with_timeout", "sse-starlette", "adapters/inbound/http/sse.py")
LIMIT_CHECK = Override(
    "RateLimitGate: Limiter._check_request_limit", "slowapi", "adapters/inbound/http/rate_limits.py"
)
SAVER_LOCK = Override(
    "SettlingPostgresSaver.lock",
    "langgraph-checkpoint-postgres",
    "adapters/outbound/langgraph/checkpoints.py",
)
SAVER_WRITES = Override(
    "SettlingSaver.aput / aput_writes", "langgraph-checkpoint", "adapters/outbound/langgraph/checkpoints.py"
)
STORE_MIGRATIONS = Override(
    "ExactSearchPostgresStore.VECTOR_MIGRATIONS",
    "langgraph-checkpoint-postgres",
    "adapters/outbound/langgraph/memory_store.py",
)
LANGFUSE_STATE = Override(
    "LangfuseTracer: LangfuseResourceManager._instances",
    "langfuse",
    "adapters/outbound/langfuse/tracer.py",
)
OVERRIDES = (
    REQUEST_PAYLOAD,
    CLIENT_SWAP,
    CHUNKS_AS_DICTS,
    SSE_SEND,
    LIMIT_CHECK,
    SAVER_LOCK,
    SAVER_WRITES,
    STORE_MIGRATIONS,
    LANGFUSE_STATE,
)

# The minor version of each package that its overrides were checked against (uv.lock).
CHECKED = {
    "langchain-openai": "1.7",
    "openai": "3.57",
    "sse-starlette": "3.7",
    "slowapi": "0.1",
    "langgraph-checkpoint-postgres": "3.2",
    "langgraph-checkpoint": "4.3",
    "langfuse": "5.0",
}


def _shape(function: Callable[..., object]) -> str:
    """A signature without annotations: the parameters an override passes on or accepts."""
    signature = inspect.signature(function)
    parameters = [p.replace(annotation=inspect.Parameter.empty) for p in signature.parameters.values()]
    return str(signature.replace(parameters=parameters, return_annotation=inspect.Signature.empty))


def _private(override: Override, module: str, name: str) -> Any:
    """``module.name``, or a failure naming the override when the private import is gone."""
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as error:
        pytest.fail(override.broken(f"{module}.{name} is gone ({error})"))


def _upstream(override: Override, owner: type[Any], name: str) -> Callable[..., Any]:
    """``owner.name``, or a failure naming the override when upstream renamed or removed it."""
    method: Callable[..., Any] | None = getattr(owner, name, None)
    if method is None:
        pytest.fail(override.broken(f"{owner.__name__}.{name} is gone"))
    return method


def _refused(override: Override, kind: type[Exception], call: Callable[[], object], if_not: str) -> None:
    """``call()`` raises ``kind``; else the test fails with ``if_not``, naming ``override``."""
    try:
        call()
    except kind:
        return
    except Exception as other:
        pytest.fail(override.broken(f"it raised {other!r}, not {kind.__name__}"))
    pytest.fail(override.broken(if_not))


def _requirement(package: str) -> str:
    dependencies: list[str] = tomllib.loads((REPOSITORY / "pyproject.toml").read_text())["project"][
        "dependencies"
    ]
    named = [d for d in dependencies if re.match(rf"{re.escape(package)}(\[[^\]]*\])?([<>=!~ ]|$)", d)]
    assert len(named) == 1, f"pyproject should list {package} once, found {named}"
    return named[0]


# --- the caps ----------------------------------------------------------------------------


@pytest.mark.parametrize("package", list(CHECKED))
def test_each_overridden_package_is_the_minor_version_its_overrides_were_checked_against(
    package: str,
) -> None:
    installed = ".".join(version(package).split(".")[:2])

    assert installed == CHECKED[package], (
        f"{package} {installed}: re-read what docs/upstream-overrides.md lists for it, run these "
        "tripwires, then move CHECKED here and the cap in pyproject"
    )


@pytest.mark.parametrize("package", list(CHECKED))
def test_pyproject_caps_each_overridden_package_below_its_next_minor_version(package: str) -> None:
    major, minor = CHECKED[package].split(".")

    assert _requirement(package).endswith(f",<{major}.{int(minor) + 1}"), (
        f"{package} must be capped below {major}.{int(minor) + 1}: its internals are overridden"
    )


def test_the_overrides_list_names_every_override_and_every_cap() -> None:
    listed = OVERRIDES_LIST.read_text(encoding="utf-8")

    unlisted = [o.name for o in OVERRIDES if o.name not in listed.replace("`", "")]
    uncapped = [p for p in CHECKED if f"`{_requirement(p)}`" not in listed]

    assert unlisted == [], f"docs/upstream-overrides.md should list these overrides: {unlisted}"
    assert uncapped == [], f"docs/upstream-overrides.md should show pyproject's cap of {uncapped}"


# --- langchain-openai: LeanChatOpenAI ----------------------------------------------------


@tool
def _add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def _sse(*events: dict[str, Any]) -> bytes:
    return "".join(f"data: {json.dumps(e)}\n\n" for e in events).encode() + b"data: [DONE]\n\n"


def _chunk(delta: dict[str, Any] | None, *, finish: str | None = None) -> dict[str, Any]:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    chunk: dict[str, Any] = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m"}
    chunk["choices"] = choices
    if delta is None:
        chunk["usage"] = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    return chunk


class _FakeModelServer:
    """An in-process OpenAI-compatible endpoint (httpx2 mock transport): records request bodies."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []

    def transport(self) -> httpx2.MockTransport:
        return httpx2.MockTransport(self._answer)

    def _answer(self, request: httpx2.Request) -> httpx2.Response:
        body: dict[str, Any] = json.loads(request.content)
        self.bodies.append(body)
        if body.get("stream"):
            chunks = [
                _chunk({"role": "assistant", "content": "Hel"}),
                _chunk({"content": "lo"}),
                _chunk({}, finish="stop"),
                _chunk(None),  # usage
            ]
            return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=_sse(*chunks))
        message = {"role": "assistant", "content": "Hello"}
        return httpx2.Response(
            200,
            json={
                "id": "c",
                "object": "chat.completion",
                "created": 0,
                "model": "m",
                "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
            },
        )


class _RecordingClient(StreamingAsyncOpenAI):
    """Parley's client, noting what each parsed response became."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.parsed: list[tuple[type[Any], type[Any]]] = []  # (cast_to, type of the result)

    def _process_response_data(self, *, data: object, cast_to: type[Any], response: Any) -> Any:
        result = super()._process_response_data(data=data, cast_to=cast_to, response=response)
        self.parsed.append((cast_to, type(result)))
        return result


def _on_fake_server(model: ChatOpenAI, client: openai.AsyncOpenAI) -> None:
    """Point ``model`` at ``client`` the way LeanChatOpenAI swaps its own in."""
    model.root_async_client = client
    model.async_client = client.chat.completions


def _fake_client(client_class: type[openai.AsyncOpenAI], server: _FakeModelServer) -> Any:
    return client_class(
        api_key="sk-test",
        base_url="http://model.test/v1",
        max_retries=0,
        http_client=httpx2.AsyncClient(transport=server.transport()),
    )


async def _stream_and_invoke(model: ChatOpenAI) -> tuple[str, str]:
    bound = model.bind_tools([_add])
    streamed = "".join([chunk.text async for chunk in bound.astream([HumanMessage("hi")])])
    whole = await bound.ainvoke([HumanMessage("hi")])
    return streamed, whole.text


def _lean_model() -> LeanChatOpenAI:
    model = build_chat_model(ModelConfig(name="m", api_key="sk-test", base_url="http://model.test/v1"))
    assert isinstance(model, LeanChatOpenAI)
    return model


def test_chat_openai_get_request_payload_keeps_the_parameters_lean_chat_openai_passes_on() -> None:
    upstream = _upstream(REQUEST_PAYLOAD, ChatOpenAI, "_get_request_payload")

    assert _shape(upstream) == "(self, input_, *, stop=None, **kwargs)", REQUEST_PAYLOAD.broken(
        f"ChatOpenAI._get_request_payload is now {_shape(upstream)}"
    )


async def test_lean_chat_openai_requests_go_through_its_payload_and_reach_the_wire_as_chat_openais(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    payloads: list[dict[str, Any]] = []
    ours = LeanChatOpenAI._get_request_payload

    def recording(self: LeanChatOpenAI, input_: Any, *, stop: list[str] | None = None, **kw: Any) -> Any:
        payloads.append(ours(self, input_, stop=stop, **kw))
        return payloads[-1]

    monkeypatch.setattr(LeanChatOpenAI, "_get_request_payload", recording)
    lean_server, plain_server = _FakeModelServer(), _FakeModelServer()
    lean, plain = _lean_model(), ChatOpenAI(**_plain_settings())
    _on_fake_server(lean, _fake_client(StreamingAsyncOpenAI, lean_server))
    _on_fake_server(plain, _fake_client(openai.AsyncOpenAI, plain_server))

    with REQUEST_PAYLOAD.named_failures():
        answers = [await _stream_and_invoke(lean), await _stream_and_invoke(plain)]

    assert answers == [("Hello", "Hello")] * 2
    assert [p["stream"] for p in payloads] == [True, False], REQUEST_PAYLOAD.broken(
        "astream()/ainvoke() no longer build their request with _get_request_payload"
    )
    assert all(p["messages"] == [] and p["extra_body"]["messages"] for p in payloads), REQUEST_PAYLOAD.broken(
        "the payload no longer carries the conversation under 'messages'"
    )
    assert lean_server.bodies == plain_server.bodies, REQUEST_PAYLOAD.broken(
        "the openai SDK no longer sends extra_body as the request's own fields"
    )
    assert lean_server.bodies[0]["messages"] == [{"role": "user", "content": "hi"}]
    await lean.root_async_client.close()
    await plain.root_async_client.close()


def _plain_settings() -> dict[str, Any]:
    """The settings build_chat_model gives LeanChatOpenAI, for a plain ChatOpenAI."""
    return {
        "model": "m",
        "api_key": "sk-test",
        "base_url": "http://model.test/v1",
        "temperature": ModelConfig().temperature,
        "max_completion_tokens": ModelConfig().max_tokens,
        "stream_usage": True,
        "stream_chunk_timeout": None,
        "max_retries": 0,
    }


async def test_chat_openai_builds_the_async_client_fields_that_lean_chat_openai_swaps() -> None:
    with CLIENT_SWAP.named_failures():
        plain, lean = ChatOpenAI(**_plain_settings()), _lean_model()

    for field in ("root_async_client", "async_client"):
        assert field in ChatOpenAI.model_fields, CLIENT_SWAP.broken(f"ChatOpenAI has no field {field}")
    assert type(plain.root_async_client) is openai.AsyncOpenAI, CLIENT_SWAP.broken(
        "ChatOpenAI no longer builds an openai.AsyncOpenAI as root_async_client"
    )
    assert isinstance(plain.async_client, type(plain.root_async_client.chat.completions))
    assert isinstance(lean.root_async_client, StreamingAsyncOpenAI), CLIENT_SWAP.broken(
        "the validator no longer runs after ChatOpenAI has built its client"
    )
    assert lean.async_client is lean.root_async_client.chat.completions
    await lean.root_async_client.close()


# --- openai: StreamingAsyncOpenAI ----------------------------------------------------------


def test_openai_process_response_data_keeps_the_parameters_streaming_async_openai_takes() -> None:
    upstream = _upstream(CHUNKS_AS_DICTS, openai.AsyncOpenAI, "_process_response_data")

    assert _shape(upstream) == "(self, *, data, cast_to, response)", CHUNKS_AS_DICTS.broken(
        f"AsyncOpenAI._process_response_data is now {_shape(upstream)}"
    )
    assert _shape(StreamingAsyncOpenAI._process_response_data) == _shape(upstream)


async def test_openai_parses_streamed_chunks_in_process_response_data_and_langchain_takes_dicts() -> None:
    server = _FakeModelServer()
    model = _lean_model()
    client = _fake_client(_RecordingClient, server)
    _on_fake_server(model, client)

    with CHUNKS_AS_DICTS.named_failures():
        streamed = [chunk async for chunk in model.astream([HumanMessage("hi")])]

    chunks = [result for cast_to, result in client.parsed if cast_to is ChatCompletionChunk]
    assert len(chunks) == 4, CHUNKS_AS_DICTS.broken(
        "the SDK's stream no longer parses each chat chunk with _process_response_data"
    )
    assert set(chunks) == {dict}
    assert "".join(c.text for c in streamed) == "Hello", CHUNKS_AS_DICTS.broken(
        "langchain-openai no longer takes streamed chunks as dicts"
    )
    assert [c.usage_metadata["total_tokens"] for c in streamed if c.usage_metadata] == [5]
    await client.close()


# --- sse-starlette: EventStream --------------------------------------------------------------


async def _two_events() -> AsyncIterator[ServerSentEvent]:
    yield ServerSentEvent(event="token", data="a")
    yield ServerSentEvent(event="token", data="b")


async def _serve(response: EventSourceResponse) -> list[MutableMapping[str, Any]]:
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        await asyncio.Event().wait()  # the client never leaves; the stream ends by itself
        return {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    await response({"type": "http", "method": "POST", "headers": []}, receive, send)
    return sent


def test_sse_starlette_send_with_timeout_keeps_its_signature_and_its_send_timeout() -> None:
    upstream = _upstream(SSE_SEND, EventSourceResponse, "_send_with_timeout")

    assert inspect.iscoroutinefunction(upstream), SSE_SEND.broken("_send_with_timeout is not a coroutine")
    assert _shape(upstream) == "(self, send, message)", SSE_SEND.broken(
        f"EventSourceResponse._send_with_timeout is now {_shape(upstream)}"
    )
    assert EventSourceResponse(_two_events()).send_timeout is None, SSE_SEND.broken(
        "send_timeout no longer holds the constructor's value (None by default)"
    )
    assert EventSourceResponse(_two_events(), send_timeout=5.0).send_timeout == 5.0


async def test_sse_starlette_sends_events_through_send_with_timeout_which_just_sends_without_one() -> None:
    through: list[MutableMapping[str, Any]] = []

    class Recording(EventSourceResponse):
        async def _send_with_timeout(self, send: Any, message: MutableMapping[str, Any]) -> None:
            through.append(message)
            await super()._send_with_timeout(send, message)

    sent = await _serve(Recording(_two_events(), ping=0, sep="\n"))

    events = [m for m in sent if m.get("body")]
    assert len(events) == 2, SSE_SEND.broken(f"two events were sent as {len(events)} messages")
    assert through == events, SSE_SEND.broken("events are no longer sent through _send_with_timeout")
    delivered: list[MutableMapping[str, Any]] = []

    async def deliver(message: MutableMapping[str, Any]) -> None:
        delivered.append(message)

    message = {"type": "http.response.body", "body": b"x", "more_body": True}
    await EventSourceResponse(_two_events())._send_with_timeout(deliver, message)
    assert delivered == [message], SSE_SEND.broken("without a send timeout it does more than send")


# --- slowapi: RateLimitGate ------------------------------------------------------------------


def _rate_limited(request: Request) -> None:
    """Stands for a route (slowapi keys limits by module and function name)."""


def _request(key: str) -> Request:
    request = Request({"type": "http", "method": "POST", "path": "/limited", "headers": []})
    request.state.rate_limit_key = key  # what RateLimitGate sets before each check
    return request


@pytest.fixture
def storage() -> MemoryStorage:
    """The storage handed to the RateLimitGate (the composition root's, in the app)."""
    return MemoryStorage(wrap_exceptions=True)


@pytest.fixture
def limiter(storage: MemoryStorage) -> Limiter:
    """The limiter of a RateLimitGate counting in ``storage``, with a route allowed twice a minute."""
    config = RateLimitConfig(key_prefix="tripwire")
    gate = RateLimitGate(config, storage, ClientIdentity(()), RateLimitMetrics.register(CollectorRegistry()))
    gate.shared.limit("2 per minute")(_rate_limited)
    return gate.shared


def test_slowapi_limiter_counts_in_the_storage_put_in_its_private_state(
    limiter: Limiter, storage: MemoryStorage
) -> None:
    counted = _request("10.0.0.1")
    with LIMIT_CHECK.named_failures():
        limiter._check_request_limit(counted, _rate_limited, in_middleware=False)
    item, identifiers = counted.state.view_rate_limit

    # Read straight from the storage: were the count elsewhere (slowapi's own storage, if it
    # renamed `_storage`/`_limiter`), a shared Redis would silently stop being shared.
    remaining = FixedWindowRateLimiter(storage).get_window_stats(item, *identifiers).remaining
    assert remaining == 1, LIMIT_CHECK.broken(
        "a count no longer lands in the storage set as Limiter._storage / Limiter._limiter"
    )


def test_slowapi_check_request_limit_keeps_the_parameters_rate_limits_passes() -> None:
    check = _upstream(LIMIT_CHECK, Limiter, "_check_request_limit")

    assert _shape(check) == "(self, request, endpoint_func, in_middleware=True)", LIMIT_CHECK.broken(
        f"Limiter._check_request_limit is now {_shape(check)}"
    )


def test_slowapi_check_request_limit_counts_a_routes_budget_and_leaves_the_spent_limit_on_the_request(
    limiter: Limiter,
) -> None:
    with LIMIT_CHECK.named_failures():
        for _ in range(2):
            limiter._check_request_limit(_request("10.0.0.1"), _rate_limited, in_middleware=False)
    spent = _request("10.0.0.1")

    _refused(
        LIMIT_CHECK,
        RateLimitExceeded,
        lambda: limiter._check_request_limit(spent, _rate_limited, in_middleware=False),
        "the route's own limit is no longer counted",
    )
    item, identifiers = getattr(spent.state, "view_rate_limit", (None, None))
    assert isinstance(item, RateLimitItem), LIMIT_CHECK.broken(
        "request.state.view_rate_limit no longer holds (limit, identifiers)"
    )
    assert str(item) == "2 per 1 minute"
    assert identifiers == ["tripwire", "10.0.0.1", f"{__name__}._rate_limited"]
    assert isinstance(limiter.limiter, RateLimiter), LIMIT_CHECK.broken("Limiter.limiter is no strategy")
    assert limiter.limiter.get_window_stats(item, *identifiers).remaining == 0, LIMIT_CHECK.broken(
        "the identifiers no longer name the spent window in Limiter.limiter"
    )
    limiter._check_request_limit(_request("10.0.0.2"), _rate_limited, in_middleware=False)  # its own budget


def test_slowapi_check_request_limit_lets_a_storage_error_through(
    limiter: Limiter, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreachable(*args: Any, **kwargs: Any) -> bool:
        raise StorageError(ConnectionError("storage down"))

    monkeypatch.setattr(limiter.limiter, "hit", unreachable)

    _refused(
        LIMIT_CHECK,
        StorageError,
        lambda: limiter._check_request_limit(_request("10.0.0.1"), _rate_limited, in_middleware=False),
        "a storage error no longer reaches the caller: the memory fallback would never start",
    )


# --- langgraph-checkpoint-postgres: SettlingPostgresSaver.lock ---------------------------------


class _RecordingLock:
    """Stands in for the saver's lock: notes when it is taken and released."""

    def __init__(self, log: list[str]) -> None:
        self.log = log

    async def __aenter__(self) -> None:
        self.log.append("lock")

    async def __aexit__(self, *exc_info: object) -> None:
        self.log.append("unlock")


def _closed_pool(log: list[str], monkeypatch: pytest.MonkeyPatch) -> AsyncConnectionPool[Any]:
    """A pool never opened (no database): asking it for a connection is noted, then refused."""
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool("postgresql://nobody@127.0.0.1:1/none", open=False)
    lend = pool.connection

    def connection(*args: Any, **kwargs: Any) -> Any:
        log.append("connection")
        return lend(*args, **kwargs)

    monkeypatch.setattr(pool, "connection", connection)
    return pool


def _saver_operations(saver: AsyncPostgresSaver) -> Iterator[tuple[str, Callable[[], Any]]]:
    config: Any = {"configurable": {"thread_id": "t", "checkpoint_ns": "", "checkpoint_id": "c"}}

    async def listing() -> None:
        async for _ in saver.alist(config):
            pass

    yield "aget_tuple", lambda: saver.aget_tuple(config)
    yield "aput", lambda: saver.aput(config, empty_checkpoint(), {}, {})
    yield "aput_writes", lambda: saver.aput_writes(config, [("channel", 1)], "task")
    yield "adelete_thread", lambda: saver.adelete_thread("t")
    yield "alist", listing


async def test_async_postgres_saver_lock_is_an_instance_lock_held_around_every_pooled_connection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    log: list[str] = []
    pool = _closed_pool(log, monkeypatch)
    saver = AsyncPostgresSaver(pool)

    assert _shape(AsyncPostgresSaver.__init__) == "(self, conn, pipe=None, serde=None)", SAVER_LOCK.broken(
        f"AsyncPostgresSaver.__init__ is now {_shape(AsyncPostgresSaver.__init__)}"
    )
    assert type(getattr(saver, "lock", None)) is asyncio.Lock, SAVER_LOCK.broken(
        f"AsyncPostgresSaver.lock is now {type(getattr(saver, 'lock', None)).__name__}"
    )
    saver.lock = cast(asyncio.Lock, _RecordingLock(log))
    for name, operation in _saver_operations(saver):
        log.clear()
        with SAVER_LOCK.named_failures(), suppress(PoolClosed):  # no database behind the pool
            await operation()
        assert log == ["lock", "connection", "unlock"], SAVER_LOCK.broken(
            f"{name}() no longer takes a pool connection while holding self.lock (saw {log})"
        )
    assert isinstance(SettlingPostgresSaver(pool).lock, asyncio.Semaphore)


# --- langgraph-checkpoint: SettlingSaver ------------------------------------------------------


class _Counter(TypedDict):
    n: int


async def _increment(state: _Counter) -> _Counter:
    return {"n": state["n"] + 1}


class _RecordingSaver(SettlingMemorySaver):
    """Notes each checkpoint write that SettlingSaver tracks."""

    def __init__(self) -> None:
        super().__init__()
        self.tracked: list[str] = []

    def _track(self, config: Any, work: Any) -> Any:
        self.tracked.append(work.__qualname__.rsplit(".", 1)[-1])
        return super()._track(config, work)


@pytest.mark.parametrize("saver", [AsyncPostgresSaver, InMemorySaver, BaseCheckpointSaver])
def test_checkpoint_savers_writes_are_coroutines_taking_what_settling_saver_forwards(
    saver: type[BaseCheckpointSaver[Any]],
) -> None:
    expected = {
        "aput": "(self, config, checkpoint, metadata, new_versions)",
        "aput_writes": "(self, config, writes, task_id, task_path='')",
    }
    for name, shape in expected.items():
        method = _upstream(SAVER_WRITES, saver, name)
        assert inspect.iscoroutinefunction(method), SAVER_WRITES.broken(
            f"{saver.__name__}.{name} is not async"
        )
        assert _shape(method) == shape, SAVER_WRITES.broken(
            f"{saver.__name__}.{name} is now {_shape(method)}"
        )


@pytest.mark.parametrize(("durability", "writes"), [("exit", {"aput"}), ("async", {"aput", "aput_writes"})])
async def test_langgraph_writes_a_runs_checkpoints_through_the_savers_own_methods(
    durability: Durability, writes: set[str]
) -> None:
    graph: StateGraph[_Counter, None, _Counter, _Counter] = StateGraph(_Counter)
    graph.add_node("increment", _increment)
    graph.add_edge(START, "increment")
    graph.add_edge("increment", END)
    saver = _RecordingSaver()

    result = await graph.compile(checkpointer=saver).ainvoke(
        {"n": 1}, {"configurable": {"thread_id": "t"}}, durability=durability
    )

    assert result == {"n": 2}
    assert set(saver.tracked) == writes, SAVER_WRITES.broken(
        f"with durability={durability!r} LangGraph wrote through {sorted(set(saver.tracked))}, not {writes}"
    )


# --- langfuse: LangfuseTracer -------------------------------------------------------------------


def test_langfuse_keeps_one_client_state_per_public_key_and_exports_its_own_scopes_spans() -> None:
    manager = _private(LANGFUSE_STATE, "langfuse._client.resource_manager", "LangfuseResourceManager")
    scope = _private(LANGFUSE_STATE, "langfuse._client.constants", "LANGFUSE_TRACER_NAME")
    public_key = "pk-lf-tripwire"
    states = getattr(manager, "_instances", None)
    assert isinstance(states, dict), LANGFUSE_STATE.broken("LangfuseResourceManager._instances is no dict")

    def client(provider: TracerProvider, exporter: InMemorySpanExporter) -> Any:
        return Langfuse(
            public_key=public_key,
            secret_key="sk-lf-tripwire",
            base_url="http://127.0.0.1:9",  # never reached: spans go to the in-memory exporter
            tracer_provider=provider,
            span_exporter=exporter,
        )

    first, second, third = (TracerProvider(shutdown_on_exit=False) for _ in range(3))
    exported = InMemorySpanExporter()
    clients = [client(first, exported), client(second, InMemorySpanExporter())]  # the same key twice
    try:
        assert getattr(states.get(public_key), "tracer_provider", None) is first, LANGFUSE_STATE.broken(
            "the state of a public key no longer keeps the first client's tracer_provider"
        )
        first.get_tracer(scope, langfuse_version, attributes={"public_key": public_key}).start_span(
            "ours"
        ).end()
        first.get_tracer("another-library").start_span("theirs").end()
        first.force_flush()
        assert [s.name for s in exported.get_finished_spans()] == ["ours"], LANGFUSE_STATE.broken(
            f"the SDK's processor no longer exports spans of scope {scope!r} with our public_key"
        )
        states.pop(public_key)
        clients.append(client(third, InMemorySpanExporter()))
        assert states[public_key].tracer_provider is third, LANGFUSE_STATE.broken(
            "a client made after its key's state was removed does not start afresh"
        )
    finally:
        for each in clients:
            each.shutdown()
        for provider in (first, second, third):
            provider.shutdown()
        states.pop(public_key, None)


# --- langgraph-checkpoint-postgres: ExactSearchPostgresStore ----------------------------


def test_the_store_vector_migrations_are_extension_table_then_the_ann_index_alone() -> None:
    from langgraph.store.postgres.aio import AsyncPostgresStore

    from parley.adapters.outbound.langgraph.memory_store import ExactSearchPostgresStore

    upstream = AsyncPostgresStore.VECTOR_MIGRATIONS
    ours = ExactSearchPostgresStore.VECTOR_MIGRATIONS
    if len(upstream) != 3:
        pytest.fail(STORE_MIGRATIONS.broken(f"{len(upstream)} vector migrations, not 3"))
    assert "CREATE EXTENSION vector" in upstream[0].sql, STORE_MIGRATIONS.broken("migration 0 moved")
    assert "CREATE TABLE IF NOT EXISTS store_vectors" in upstream[1].sql, STORE_MIGRATIONS.broken(
        "migration 1 moved"
    )
    assert "CREATE INDEX" in upstream[2].sql, STORE_MIGRATIONS.broken(
        "migration 2 no longer builds the index"
    )
    assert list(ours[:2]) == list(upstream[:2])
    assert ours[2].sql.strip() == "SELECT 1"
