"""Which chat model the graph runs: ``ChatOpenAI`` with an API key, else the offline model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Self

import openai
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_openai import ChatOpenAI
from pydantic import SecretStr, model_validator

from parley.adapters.outbound.langgraph.offline_model import OFFLINE_MODEL_NAME, OfflineChatModel
from parley.adapters.outbound.langgraph.openai_client import StreamingAsyncOpenAI, streaming_client


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelConfig:
    """Which model answers. ``api_key=None`` selects the offline model.

    ``base_url`` points at any OpenAI-compatible server (OpenAI, vLLM, Ollama);
    ``max_tokens`` bounds the reply; ``request_timeout`` bounds one HTTP request;
    ``offline_token_delay`` slows the offline model per token (benchmarks, tests).
    """

    name: str = "gpt-4o-mini"
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
        return OFFLINE_MODEL_NAME if self.is_offline else self.name


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


def build_chat_model(config: ModelConfig) -> BaseChatModel:
    """``ChatOpenAI`` (streaming, usage reported, no SDK retries) or the offline model."""
    if config.api_key is None:
        return OfflineChatModel(token_delay=config.offline_token_delay)
    return LeanChatOpenAI(
        model=config.name,
        temperature=config.temperature,
        max_completion_tokens=config.max_tokens,
        base_url=config.base_url,
        api_key=SecretStr(config.api_key),
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
