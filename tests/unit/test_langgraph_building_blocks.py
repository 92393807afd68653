"""The LangGraph adapter's pure building blocks: calculator, context trimming, retry policy, offline model.

No I/O: these are unit tests (marked so), kept beside the adapter's other tests.
"""

from __future__ import annotations

from typing import Any

import httpx2  # the HTTP client the openai SDK is built on (not httpx)
import openai
import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.messages.utils import count_tokens_approximately

from parley.adapters.outbound.langgraph.checkpoints import libpq_url
from parley.adapters.outbound.langgraph.context import build_context, drop_unanswered_tool_calls
from parley.adapters.outbound.langgraph.failures import RetryPolicy, call_with_retries, retry_reason
from parley.adapters.outbound.langgraph.offline_model import OFFLINE_PREFIX, OfflineChatModel, find_arithmetic
from parley.adapters.outbound.langgraph.tools import CalculationError, calculator, evaluate_arithmetic
from parley.ports.agent import AgentEvent, AgentUnavailable, ModelRetry

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("expression", "result"),
    [
        ("2+3*4", "14"),
        ("(1 + 2) ** 3", "27"),
        ("0.1+0.2", "0.3"),
        ("7/2", "3.5"),
        ("-3 + 5", "2"),
        ("2^10", "1024"),
    ],
)
def test_the_calculator_evaluates_arithmetic(expression: str, result: str) -> None:
    assert calculator.invoke({"expression": expression}) == result


@pytest.mark.parametrize(
    "expression",
    [
        "__import__('os').system('true')",
        "abs(-1)",
        "x + 1",
        "(1).real",
        "2**1000",
        "9**9**9",
        "1/0",
        "True + 1",
        "",
        "1+" * 150,
    ],
)
def test_the_calculator_refuses_anything_but_bounded_arithmetic(expression: str) -> None:
    with pytest.raises(CalculationError):
        evaluate_arithmetic(expression)


@pytest.mark.parametrize(
    ("text", "expression"),
    [("what is 2+3*4?", "2+3*4"), ("compute (1 + 2) * 3 please", "(1 + 2) * 3"), ("I have 3 cats", None)],
)
def test_the_offline_model_spots_arithmetic(text: str, expression: str | None) -> None:
    assert find_arithmetic(text) == expression


def long_turn(index: int) -> list[BaseMessage]:
    return [HumanMessage(f"question {index} " + "word " * 40), AIMessage(f"answer {index} " + "word " * 40)]


def test_the_context_keeps_the_system_prompt_and_the_newest_turns_within_budget() -> None:
    history = [message for index in range(10) for message in long_turn(index)]
    history.append(HumanMessage("the newest question"))

    context = build_context("be nice", history, budget=200)

    assert isinstance(context[0], SystemMessage)
    assert context[-1].text == "the newest question"
    assert isinstance(context[1], HumanMessage)
    assert count_tokens_approximately(context) <= 200
    assert len(context) < len(history)


def test_the_current_turn_is_kept_even_when_it_alone_exceeds_the_budget() -> None:
    history = [*long_turn(0), HumanMessage("huge " * 500)]

    context = build_context("be nice", history, budget=50)

    assert [type(m) for m in context] == [SystemMessage, HumanMessage]
    assert context[-1].text.startswith("huge")


def test_a_trimmed_context_never_separates_a_tool_result_from_its_call() -> None:
    call = AIMessage("", tool_calls=[{"name": "calculator", "args": {"expression": "1+1"}, "id": "c1"}])
    history = [
        *long_turn(0),
        HumanMessage("what is 1+1"),
        call,
        ToolMessage("2", tool_call_id="c1"),
        AIMessage("2"),
    ]
    history.append(HumanMessage("and now?"))

    for budget in range(20, 200, 10):
        context = build_context("sys", history, budget=budget)
        for index, message in enumerate(context):
            if isinstance(message, ToolMessage):
                assert isinstance(context[index - 1], AIMessage)


def test_unanswered_tool_calls_are_removed_but_their_text_is_kept() -> None:
    dangling = AIMessage("let me check", tool_calls=[{"name": "current_time", "args": {}, "id": "lost"}])
    answered = AIMessage("", tool_calls=[{"name": "current_time", "args": {}, "id": "ok"}])
    history = [
        HumanMessage("time?"),
        dangling,
        HumanMessage("time again?"),
        answered,
        ToolMessage("noon", tool_call_id="ok"),
        ToolMessage("stray", tool_call_id="lost"),
    ]

    cleaned = drop_unanswered_tool_calls(history)

    assert [m.text for m in cleaned] == ["time?", "let me check", "time again?", "", "noon"]
    assert isinstance(cleaned[1], AIMessage)
    assert not cleaned[1].tool_calls
    assert isinstance(cleaned[3], AIMessage)
    assert cleaned[3].tool_calls


def test_retry_delays_grow_exponentially_up_to_the_cap() -> None:
    policy = RetryPolicy(max_attempts=6, backoff_base=0.5, backoff_max=3.0)

    assert [policy.delay_before(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def status_error(cls: type[openai.APIStatusError], status: int) -> openai.APIStatusError:
    response = httpx2.Response(status, request=httpx2.Request("POST", "http://127.0.0.1/v1/chat/completions"))
    return cls("failed", response=response, body=None)


@pytest.mark.parametrize(
    ("error", "retryable"),
    [
        (status_error(openai.RateLimitError, 429), True),
        (status_error(openai.InternalServerError, 503), True),
        (status_error(openai.APIStatusError, 502), True),
        (openai.APIConnectionError(request=httpx2.Request("POST", "http://127.0.0.1")), True),
        (openai.APITimeoutError(request=httpx2.Request("POST", "http://127.0.0.1")), True),
        (status_error(openai.BadRequestError, 400), False),
        (status_error(openai.AuthenticationError, 401), False),
        (status_error(openai.NotFoundError, 404), False),
        (ValueError("bug"), False),
    ],
)
def test_only_transient_failures_are_retryable(error: Exception, retryable: bool) -> None:
    assert (retry_reason(error) is not None) is retryable


def _flaky_call(failures: list[Exception], *, text_before_failing: str = "") -> Any:
    """A model call that raises each of ``failures`` in turn (after streaming some text), then answers."""
    calls = 0

    async def call(streamed: list[str]) -> str:
        nonlocal calls
        calls += 1
        if calls <= len(failures):
            if text_before_failing:
                streamed.append(text_before_failing)
            raise failures[calls - 1]
        return f"answer after {calls} call(s)"

    return call


NO_WAIT = RetryPolicy(max_attempts=3, backoff_base=0.0)
DROPPED = openai.APIConnectionError(request=httpx2.Request("POST", "http://127.0.0.1"))


async def test_a_transient_failure_is_retried_and_announced() -> None:
    events: list[AgentEvent] = []

    reply = await call_with_retries(_flaky_call([DROPPED]), policy=NO_WAIT, model="m", emit=events.append)

    assert reply == "answer after 2 call(s)"
    assert events == [ModelRetry(attempt=1, reason="connection failed", model="m")]


async def test_retries_give_up_after_the_policys_attempts_naming_the_model() -> None:
    events: list[AgentEvent] = []

    with pytest.raises(AgentUnavailable, match="gave up after 3 attempt") as failed:
        await call_with_retries(_flaky_call([DROPPED] * 3), policy=NO_WAIT, model="m", emit=events.append)

    assert failed.value.model == "m"
    assert [e.attempt for e in events if isinstance(e, ModelRetry)] == [1, 2]


@pytest.mark.parametrize(
    ("failure", "text_before_failing"),
    [(status_error(openai.BadRequestError, 400), ""), (DROPPED, "half a sent")],
    ids=["not transient", "text already sent"],
)
async def test_no_retry_for_a_lasting_failure_or_once_text_was_sent(
    failure: Exception, text_before_failing: str
) -> None:
    events: list[AgentEvent] = []
    call = _flaky_call([failure], text_before_failing=text_before_failing)

    with pytest.raises(AgentUnavailable):
        await call_with_retries(call, policy=NO_WAIT, model="m", emit=events.append)

    assert events == []


def test_the_offline_model_answers_the_same_whether_streamed_or_not() -> None:
    model = OfflineChatModel()
    prompt = [HumanMessage("hi"), AIMessage("hello"), HumanMessage("how are you?")]

    whole = model.invoke(prompt)
    streamed = "".join(chunk.text for chunk in model.stream(prompt))

    assert whole.text == streamed
    assert streamed == f'{OFFLINE_PREFIX}I remember 1 earlier user message(s). You said: "how are you?"'
    assert whole.usage_metadata is not None
    assert whole.usage_metadata["output_tokens"] > 0


def test_the_offline_model_calls_no_tool_it_was_not_given() -> None:
    reply = OfflineChatModel().invoke([HumanMessage("what is 2+2")])

    assert reply.tool_calls == []
    assert reply.text.startswith(OFFLINE_PREFIX)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://u@h:5432/d", "postgresql://u@h:5432/d"),
        ("postgresql+psycopg://u@h:5432/d", "postgresql://u@h:5432/d"),
        ("postgres://u@h/d", "postgresql://u@h/d"),
        ("host=h dbname=d", "host=h dbname=d"),
    ],
)
def test_database_urls_are_accepted_in_sqlalchemy_form_too(given: str, expected: str) -> None:
    assert libpq_url(given) == expected


async def test_the_openai_model_streams_chunks_as_dicts_on_aiohttp_and_keeps_its_settings() -> None:
    """Guards two optimisations: if langchain-openai stopped letting us swap its client, streamed
    chunks would silently go back to being built as pydantic models, over httpx's pool."""
    from openai._vendor.httpx_aiohttp import Httpx2AiohttpClient

    from parley.adapters.outbound.langgraph.chat_model import (
        LeanChatOpenAI,
        ModelConfig,
        build_chat_model,
        close_chat_model,
    )
    from parley.adapters.outbound.langgraph.openai_client import StreamingAsyncOpenAI

    model = build_chat_model(
        ModelConfig(name="m", api_key="sk-test", base_url="http://127.0.0.1:9/v1", request_timeout=7.0)
    )

    assert isinstance(model, LeanChatOpenAI)
    client = model.root_async_client
    assert isinstance(client, StreamingAsyncOpenAI)
    assert isinstance(client._client, Httpx2AiohttpClient)
    assert model.async_client is not None
    assert str(client.base_url).startswith("http://127.0.0.1:9/v1")
    assert client.api_key == "sk-test"
    assert client.max_retries == 0  # our RetryPolicy is the only retry layer
    assert client.timeout == 7.0
    await close_chat_model(model)
    assert client.is_closed()
