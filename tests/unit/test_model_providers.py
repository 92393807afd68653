"""``provider:model`` strings, the start-up checks of LLM_MODEL / LLM_FALLBACK_MODELS, retry
classification of other providers' errors, and the fallback loop. No network."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable

import httpx
import pytest

from parley.adapters.outbound.langgraph.chat_model import ModelConfig, build_chat_models
from parley.adapters.outbound.langgraph.failures import RetryPolicy, call_with_fallbacks, retry_reason
from parley.adapters.outbound.langgraph.offline_model import OFFLINE_MODEL_NAME
from parley.adapters.outbound.langgraph.providers import ModelSpec, missing_packages, parse_model_spec
from parley.config import ConfigurationError, load_settings
from parley.container import Container
from parley.ports.agent import AgentEvent, AgentUnavailable, ModelRetry

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("gpt-4o-mini", ModelSpec("openai", "gpt-4o-mini")),
        ("openai:gpt-4o-mini", ModelSpec("openai", "gpt-4o-mini")),
        ("anthropic:claude-3-5-haiku-latest", ModelSpec("anthropic", "claude-3-5-haiku-latest")),
        ("Anthropic:claude-x", ModelSpec("anthropic", "claude-x")),
        ("ollama:llama3.1:8b", ModelSpec("ollama", "llama3.1:8b")),  # the rest is the model's
        ("google-genai:gemini-2.0-flash", ModelSpec("google_genai", "gemini-2.0-flash")),
        # An unknown prefix is part of an OpenAI model name: fine-tunes, OpenAI-compatible servers.
        ("ft:gpt-4o-mini:org::abc123", ModelSpec("openai", "ft:gpt-4o-mini:org::abc123")),
        ("llama3:8b", ModelSpec("openai", "llama3:8b")),
    ],
)
def test_a_model_string_names_its_provider_and_model(text: str, spec: ModelSpec) -> None:
    assert parse_model_spec(text) == spec


@pytest.mark.parametrize("text", ["", "anthropic:", "openai:", ":gpt-4o", "gpt 4o", "llama3:"])
def test_a_malformed_model_string_is_refused_by_the_adapter(text: str) -> None:
    with pytest.raises(ValueError, match="model"):
        parse_model_spec(text)


@pytest.mark.parametrize(
    ("llm", "message"),
    [
        ({"model": "anthropic:"}, "LLM_MODEL: 'anthropic:' is not a model"),
        ({"model": ":gpt-4o"}, "LLM_MODEL: ':gpt-4o' is not a model"),
        ({"model": "gpt 4o"}, "LLM_MODEL: 'gpt 4o' is not a model"),
        ({"fallback_models": "gpt-4o-mini,ollama:"}, "LLM_FALLBACK_MODELS: 'ollama:' is not a model"),
        ({"fallback_models": "a,b,a"}, "LLM_FALLBACK_MODELS: a model is listed twice"),
        ({"model": "m", "fallback_models": "n,m"}, "LLM_FALLBACK_MODELS: lists LLM_MODEL itself"),
    ],
)
def test_bad_model_settings_are_refused_at_start_up_naming_the_variable(
    llm: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        load_settings(llm=llm)


def test_fallback_models_are_a_comma_separated_list() -> None:
    settings = load_settings(llm={"fallback_models": " openai:gpt-4o-mini , anthropic:claude-x ,"})

    assert settings.llm.fallback_models == ["openai:gpt-4o-mini", "anthropic:claude-x"]


def test_a_missing_provider_package_stops_start_up_naming_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    # None in sys.modules: the import system treats the package as absent, installed or not.
    monkeypatch.setitem(sys.modules, "langchain_anthropic", None)
    settings = load_settings(
        llm={"api_key": "k", "model": "gpt-4o-mini", "fallback_models": "anthropic:claude-x"}
    )
    container = Container(settings=settings)

    with pytest.raises(ConfigurationError) as refused:
        container.evaluation_agent()  # the app's agent, with no database (the same check)

    message = str(refused.value)
    assert "LLM_FALLBACK_MODELS names 'anthropic:claude-x'" in message
    assert "uv sync --extra anthropic" in message
    assert "LLM_MODEL" not in message  # the OpenAI model needs nothing more


def test_a_provider_without_an_extra_names_its_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "langchain_groq", None)

    need = missing_packages(ModelSpec("groq", "llama-3.1-8b-instant"))

    assert need is not None
    assert "pip install langchain langchain-groq" in need
    assert missing_packages(ModelSpec("openai", "gpt-4o-mini")) is None


def test_offline_no_provider_package_is_needed_and_only_the_offline_model_is_built(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "langchain_anthropic", None)
    settings = load_settings(llm={"model": "anthropic:claude-x", "fallback_models": "ollama:llama3"})

    Container(settings=settings).evaluation_agent()  # no ConfigurationError: no provider model is built

    models = build_chat_models(ModelConfig(name="anthropic:claude-x", fallbacks=("ollama:llama3",)))
    assert [named.name for named in models] == [OFFLINE_MODEL_NAME]


def test_the_openai_path_stays_lean_chat_openai_for_the_model_and_openai_fallbacks() -> None:
    config = ModelConfig(
        name="openai:primary", fallbacks=("fallback",), api_key="k", base_url="http://x.test/v1"
    )

    models = build_chat_models(config)

    assert [(named.name, type(named.model).__name__) for named in models] == [
        ("primary", "LeanChatOpenAI"),
        ("fallback", "LeanChatOpenAI"),
    ]


def test_another_provider_is_built_by_init_chat_model_without_sdk_retries() -> None:
    pytest.importorskip("langchain_anthropic", reason="the 'anthropic' extra is not installed")
    pytest.importorskip("langchain", reason="the 'anthropic' extra is not installed")
    config = ModelConfig(name="anthropic:claude-x", api_key="k", base_url="http://x.test", max_tokens=77)

    [named] = build_chat_models(config)

    model = named.model
    assert (named.name, type(model).__name__) == ("claude-x", "ChatAnthropic")
    assert (getattr(model, "max_retries", None), getattr(model, "max_tokens", None)) == (0, 77)


class _StatusError(Exception):
    """What anthropic's, ollama's and the other generated SDKs' status errors carry."""

    def __init__(self, status_code: int) -> None:
        super().__init__(f"status {status_code}")
        self.status_code = status_code


class APIConnectionError(Exception):
    """Named like the generated SDKs' (anthropic.APIConnectionError)."""


class APITimeoutError(APIConnectionError):
    """Named like the generated SDKs' (anthropic.APITimeoutError)."""


_REQUEST = httpx.Request("POST", "http://127.0.0.1")


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (_StatusError(429), "rate limited (429)"),
        (_StatusError(500), "server error (500)"),
        (_StatusError(529), "server error (529)"),  # Anthropic's "overloaded"
        (_StatusError(400), None),
        (_StatusError(401), None),
        (httpx.HTTPStatusError("x", request=_REQUEST, response=httpx.Response(503)), "server error (503)"),
        (httpx.HTTPStatusError("x", request=_REQUEST, response=httpx.Response(404)), None),
        (httpx.ConnectError("refused"), "connection failed"),
        (httpx.ReadTimeout("slow"), "request timed out"),
        (APIConnectionError(), "connection failed"),
        (APITimeoutError(), "request timed out"),
        (ValueError("malformed"), None),
    ],
)
def test_other_providers_failures_are_classified_by_what_they_carry(
    error: Exception, reason: str | None
) -> None:
    assert retry_reason(error) == reason


NO_WAIT = RetryPolicy(max_attempts=2, backoff_base=0.0)
Call = Callable[[list[str]], Awaitable[str]]


def _call(name: str, failures: list[Exception], log: list[str]) -> tuple[str, Call]:
    async def call(streamed: list[str]) -> str:
        log.append(name)
        if failures:
            raise failures.pop(0)
        return f"reply of {name}"

    return name, call


async def test_after_its_retries_a_model_hands_over_to_the_next_announcing_both() -> None:
    events: list[AgentEvent] = []
    log: list[str] = []
    calls = [_call("a", [_StatusError(500), _StatusError(502)], log), _call("b", [], log)]

    index, reply = await call_with_fallbacks(calls, policy=NO_WAIT, emit=events.append)

    assert (index, reply, log) == (1, "reply of b", ["a", "a", "b"])
    assert events == [
        ModelRetry(attempt=1, reason="server error (500)", model="a"),
        ModelRetry(attempt=2, reason="server error (502)", model="a", fallback="b"),
    ]


async def test_a_lasting_failure_does_not_fall_back() -> None:
    events: list[AgentEvent] = []
    log: list[str] = []
    calls = [_call("a", [_StatusError(401)], log), _call("b", [], log)]

    with pytest.raises(AgentUnavailable) as failed:
        await call_with_fallbacks(calls, policy=NO_WAIT, emit=events.append)

    assert (failed.value.model, type(failed.value), log, events) == ("a", AgentUnavailable, ["a"], [])


async def test_a_run_starts_where_an_earlier_call_of_it_fell_back_to() -> None:
    log: list[str] = []
    calls = [_call("a", [], log), _call("b", [], log)]

    index, _ = await call_with_fallbacks(calls, policy=NO_WAIT, emit=lambda _: None, first=1)

    assert (index, log) == (1, ["b"])
