"""The openai SDK client behind ``ChatOpenAI``, tuned for many concurrent streams.

Two changes, each measured with ``uv run just bench slow`` (1,000 concurrent streams):

- **aiohttp transport** (``openai[aiohttp]``, the SDK's documented option "for improved
  concurrency performance"): httpx's anyio-based connection pool spent a cancel scope and
  a timeout per read;
- **chunks stay dicts**: the SDK builds a pydantic ``ChatCompletionChunk`` per chunk that
  langchain-openai turns straight back into a dict (``model_dump()``; it takes dicts as
  they are): that round trip was the largest per-token cost of a streamed turn (5.4 of
  12.4 ms CPU for 19 chunks).

SSE framing, ``[DONE]``, error events, timeouts and closing the response stay the SDK's.
``_process_response_data`` is SDK-private: entry 3 of ``docs/upstream-overrides.md``.
"""

from __future__ import annotations

from typing import Any

import openai
from openai.types.chat import ChatCompletionChunk


class StreamingAsyncOpenAI(openai.AsyncOpenAI):
    """``AsyncOpenAI`` whose streamed chat chunks stay dicts."""

    def _process_response_data(self, *, data: object, cast_to: type[Any], response: Any) -> Any:
        if cast_to is ChatCompletionChunk and isinstance(data, dict):
            return data
        return super()._process_response_data(data=data, cast_to=cast_to, response=response)


def streaming_client(template: openai.AsyncOpenAI, *, headers: Any, query: Any) -> StreamingAsyncOpenAI:
    """A :class:`StreamingAsyncOpenAI` with ``template``'s key, URL, timeout and retries,
    on the aiohttp transport (created lazily, on first use, in the running loop)."""
    return StreamingAsyncOpenAI(
        api_key=template.api_key,
        organization=template.organization,
        base_url=template.base_url,
        timeout=template.timeout,
        max_retries=template.max_retries,
        default_headers=headers,
        default_query=query,
        http_client=openai.DefaultAioHttpClient(timeout=template.timeout),
    )
