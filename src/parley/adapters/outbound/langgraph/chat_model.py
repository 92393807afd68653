"""Which chat models the graph runs: with an API key, the configured model and its fallbacks
(OpenAI's through ``LeanChatOpenAI``, other providers' through LangChain's ``init_chat_model``,
see :mod:`.providers`); without one, the offline model alone."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Self

import openai
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_openai import ChatOpenAI
from pydantic import SecretStr, model_validator

from parley.adapters.outbound.langgraph.offline_model import OFFLINE_MODEL_NAME, OfflineChatModel
from parley.adapters.outbound.langgraph.openai_client import StreamingAsyncOpenAI, streaming_client
from parley.adapters.outbound.langgraph.providers import ModelSpec, missing_packages, parse_model_spec

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelConfig:
    """Which model answers. ``api_key=None`` selects the offline model (``fallbacks`` are then
    ignored: the offline model does not fail).

    ``name`` and each of ``fallbacks`` are ``provider:model`` strings (:func:`parse_model_spec`;
    a bare name is an OpenAI model). ``api_key`` and ``base_url`` belong to ``name``'s provider:
    every model of that provider gets them, a model of another provider reads its credentials
    as its LangChain package does (``ANTHROPIC_API_KEY``, ``OLLAMA_HOST``...).
    ``base_url`` points at any server of that provider (for OpenAI: vLLM, Ollama's OpenAI API);
    ``max_tokens`` bounds the reply; ``request_timeout`` bounds one HTTP request;
    ``offline_token_delay`` slows the offline model per token (benchmarks, tests).
    """

    name: str = "gpt-4o-mini"
    fallbacks: tuple[str, ...] = ()
    api_key: str | None = None
    base_url: str | None = None
    temperature: float = 0.2
    max_tokens: int = 2000
    request_timeout: float = 30.0
    offline_token_delay: float = 0.0

    @property
    def is_offline(self) -> bool:
        return self.api_key is None

    @property
    def effective_name(self) -> str:
        """The name reported when the provider names no model: the offline model's, offline."""
        return OFFLINE_MODEL_NAME if self.is_offline else parse_model_spec(self.name).name

    def specs(self) -> list[ModelSpec]:
        """The models to try, in order: ``name``, then ``fallbacks`` (none offline)."""
        if self.is_offline:
            return []
        return [parse_model_spec(text) for text in (self.name, *self.fallbacks)]

    def missing_packages(self) -> list[str]:
        """What to install before this configuration can run (one sentence per model), else []."""
        specs = self.specs()
        return [f"{spec.provider}:{spec.name}: {need}" for spec in specs if (need := missing_packages(spec))]


# Body fields the SDK would walk against its TypedDicts for nothing (see LeanChatOpenAI):
# plain JSON that the transform leaves as it is. "model" and "stream" stay arguments (the
# SDK reads them itself), and so does anything not listed.
_SENT_UNTRANSFORMED = (
    "messages",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "temperature",
    "max_completion_tokens",
    "max_tokens",
    "stream_options",
    "stop",
)


class LeanChatOpenAI(ChatOpenAI):
    """``ChatOpenAI`` that sends the conversation, the tool schemas and the sampling settings
    through ``extra_body``.

    Why: before every request the openai SDK walks the whole body against its TypedDict
    annotations (``async_maybe_transform``), which for chat messages and tool schemas changes
    nothing but costs ~0.1 ms per message: with a chat-sized context that was the largest
    single cost of a turn (~15 % of the server's CPU in the turns benchmark), the two tool
    schemas alone ~6 % with 1,000 concurrent streams, and the remaining scalar fields still
    ~2.5 % (type-hint lookups per field, in a py-spy profile). ``extra_body`` is merged
    into the JSON body after that step, untouched ("the second mapping takes precedence"),
    so the request on the wire is the same. The integration tests read the requests a
    local fake server received, so a change of that merge would fail them.

    Both methods here override or rely on langchain-openai internals: see entries 1 and 2 of
    ``docs/upstream-overrides.md`` (the version cap, and the tripwires that check them).
    """

    @model_validator(mode="after")
    def _use_streaming_client(self) -> Self:
        client = self.root_async_client
        if isinstance(client, openai.AsyncOpenAI) and not isinstance(client, StreamingAsyncOpenAI):
            self.root_async_client = streaming_client(
                client, headers=self.default_headers, query=self.default_query
            )
            self.async_client = self.root_async_client.chat.completions
        return self

    def _get_request_payload(
        self, input_: LanguageModelInput, *, stop: list[str] | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        payload: dict[str, Any] = super()._get_request_payload(input_, stop=stop, **kwargs)
        raw = {key: payload.pop(key) for key in _SENT_UNTRANSFORMED if key in payload}
        if raw:
            payload["extra_body"] = {**(payload.get("extra_body") or {}), **raw}
        if "messages" in raw:
            payload["messages"] = []  # a required argument of the SDK's create()
        return payload


@dataclass(frozen=True, slots=True)
class NamedModel:
    """A chat model and the name reported for it when its provider names none."""

    name: str
    model: BaseChatModel


def build_chat_models(config: ModelConfig) -> list[NamedModel]:
    """The configured model and its fallbacks, in order, or the offline model alone.

    Raises ``RuntimeError`` naming what to install when a provider's package is missing."""
    if config.is_offline:
        if config.fallbacks:
            _log.info("fallback models ignored: the offline model (no API key) does not fail over")
        return [NamedModel(OFFLINE_MODEL_NAME, build_chat_model(config))]
    if missing := config.missing_packages():
        raise RuntimeError("; ".join(missing))
    primary = parse_model_spec(config.name)
    return [NamedModel(spec.name, _build(config, spec, primary)) for spec in config.specs()]


def build_chat_model(config: ModelConfig) -> BaseChatModel:
    """The configured model (``name``; see :func:`build_chat_models`) or the offline model."""
    if config.api_key is None:
        return OfflineChatModel(token_delay=config.offline_token_delay)
    primary = parse_model_spec(config.name)
    return _build(config, primary, primary)


def _build(config: ModelConfig, spec: ModelSpec, primary: ModelSpec) -> BaseChatModel:
    """``spec``'s model; the key and URL of ``config`` only if ``spec`` is of ``primary``'s provider."""
    own = spec.provider == primary.provider
    if spec.is_openai:
        return _lean_chat_openai(config, spec.name, api_key=config.api_key if own else None, own=own)
    return _other_provider(config, spec, own=own)


def _other_provider(config: ModelConfig, spec: ModelSpec, *, own: bool) -> BaseChatModel:
    """A model of another provider, by LangChain's ``init_chat_model`` (an optional package,
    imported only here). Like the OpenAI path: no SDK retries (the adapter's policy is the only
    retry layer), the same reply bound, temperature and request timeout."""
    from langchain.chat_models import init_chat_model  # optional, and slow to import

    settings: dict[str, Any] = {"temperature": config.temperature}
    if spec.provider == "ollama":
        # ChatOllama silently drops max_tokens/timeout/max_retries: its own names.
        settings |= {"num_predict": config.max_tokens, "client_kwargs": {"timeout": config.request_timeout}}
    else:
        settings |= {"max_tokens": config.max_tokens, "timeout": config.request_timeout, "max_retries": 0}
        if own and config.api_key is not None:
            settings["api_key"] = config.api_key
    if own and config.base_url is not None:
        settings["base_url"] = config.base_url
    model: BaseChatModel = init_chat_model(spec.name, model_provider=spec.provider, **settings)
    return model


def _lean_chat_openai(config: ModelConfig, name: str, *, api_key: str | None, own: bool) -> LeanChatOpenAI:
    """``ChatOpenAI`` (streaming, usage reported, no SDK retries): the measured fast path.
    Without ``api_key`` (a fallback of another provider than ``name``'s), the openai SDK reads
    ``OPENAI_API_KEY`` and ``OPENAI_BASE_URL``."""
    return LeanChatOpenAI(
        model=name,
        temperature=config.temperature,
        max_completion_tokens=config.max_tokens,
        base_url=config.base_url if own else None,
        api_key=SecretStr(api_key) if api_key is not None else None,
        # `streaming` is left unset on purpose: astream() then streams and ainvoke() makes
        # one non-streamed request (setting it, even to False, makes astream() follow it).
        stream_usage=True,
        timeout=config.request_timeout,
        # No per-chunk watchdog: it wraps every chunk in asyncio.wait_for (a new task per
        # token, ~8 % of the server's CPU with 1,000 streams). Silence is already bounded by
        # the HTTP read timeout and by the agent's per-turn budget (AgentTimeout -> 504).
        stream_chunk_timeout=None,
        # The adapter's RetryPolicy is the only retry layer: SDK retries would hide
        # failures from it, double the wait and skip the ModelRetry events.
        max_retries=0,
    )


async def close_chat_model(model: BaseChatModel) -> None:
    """Release the model's HTTP connections (the aiohttp session); a no-op offline."""
    if isinstance(model, LeanChatOpenAI):
        await model.root_async_client.close()
