"""The offline default model: deterministic, token-streaming, tool-calling.

Used when no API key is configured, so the whole product works with no network.
It runs inside the same LangGraph graph as a real model (it supports
``bind_tools``), and its behaviour depends only on the conversation it is given:

- a reply to a tool result reports that result;
- a user message holding arithmetic (``what is 2+3*4``) calls ``calculator``;
  one asking for the time calls ``current_time`` (when those tools are bound);
- anything else is answered by quoting the message and saying how many earlier
  user messages the (trimmed) context still holds, and which long-term memories
  of the user the system prompt holds (:func:`~.context.with_memories`), if any.

Every reply starts with :data:`OFFLINE_PREFIX`; usage is reported with the
approximate token counter.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.messages.utils import count_tokens_approximately
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool

from parley.adapters.outbound.langgraph.context import MEMORIES_HEADING

OFFLINE_PREFIX = "[offline model] "
OFFLINE_MODEL_NAME = "offline-echo"

_CANDIDATE_EXPRESSION = re.compile(r"[-(\d][\d\s+\-*/%^().]*[\d)]")
_HAS_OPERATOR = re.compile(r"[\d)]\s*(?:\*\*|//|[-+*/%^])\s*[-(\d]")
_ASKS_TIME = re.compile(r"\b(?:what time|current time|time is it)\b", re.IGNORECASE)
_TOKEN = re.compile(r"\s*\S+")


@dataclass(frozen=True, slots=True)
class _PlannedToolCall:
    name: str
    args: dict[str, Any]
    call_id: str


def find_arithmetic(text: str) -> str | None:
    """The first arithmetic expression in ``text`` (``"2+3*4"``), if any."""
    for match in _CANDIDATE_EXPRESSION.finditer(text):
        candidate = match.group().strip()
        if _HAS_OPERATOR.search(candidate):
            return candidate
    return None


def _plan(messages: Sequence[BaseMessage], tool_names: frozenset[str]) -> str | _PlannedToolCall:
    """Decide the reply: text, or one tool call. Pure and deterministic."""
    last = messages[-1] if messages else None
    if isinstance(last, ToolMessage):
        return f"{OFFLINE_PREFIX}The {last.name or 'tool'} tool says: {last.text}"
    if not isinstance(last, HumanMessage):
        return f"{OFFLINE_PREFIX}I have nothing to answer yet."
    call_id = f"call_offline_{sum(isinstance(m, AIMessage) for m in messages)}"
    expression = find_arithmetic(last.text)
    if expression is not None and "calculator" in tool_names:
        return _PlannedToolCall("calculator", {"expression": expression}, call_id)
    if _ASKS_TIME.search(last.text) and "current_time" in tool_names:
        return _PlannedToolCall("current_time", {}, call_id)
    earlier = sum(isinstance(m, HumanMessage) for m in messages) - 1
    reply = f'{OFFLINE_PREFIX}I remember {earlier} earlier user message(s). You said: "{last.text}"'
    facts = _memories(messages)
    return f"{reply} I know about you: {'; '.join(facts)}." if facts else reply


def _memories(messages: Sequence[BaseMessage]) -> list[str]:
    """The user's facts listed in the system prompt (after :data:`MEMORIES_HEADING`)."""
    system = messages[0] if messages and isinstance(messages[0], SystemMessage) else None
    if system is None or MEMORIES_HEADING not in system.text:
        return []
    listed = system.text.split(MEMORIES_HEADING, 1)[1].splitlines()
    return [line[2:] for line in listed if line.startswith("- ")]


def _tool_names(kwargs: dict[str, Any]) -> frozenset[str]:
    tools: list[dict[str, Any]] = kwargs.get("tools") or []
    return frozenset(str(t.get("function", {}).get("name", "")) for t in tools)


class OfflineChatModel(BaseChatModel):
    """A deterministic stand-in for an LLM, clearly labelled in every reply.

    ``token_delay`` (seconds) is slept before each streamed token, to imitate a
    real model in benchmarks and cancellation tests.
    """

    model_name: str = OFFLINE_MODEL_NAME
    token_delay: float = 0.0

    @property
    def _llm_type(self) -> str:
        return "parley-offline"

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools the OpenAI way, so ``_generate``/``_stream`` see ``tools=[...]``."""
        return self.bind(tools=[convert_to_openai_tool(t) for t in tools], **kwargs)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        chunks = self._chunks(messages, kwargs)
        message = chunks[0].message
        for chunk in chunks[1:]:
            message = message + chunk.message
        final = AIMessage(
            content=message.content,
            tool_calls=getattr(message, "tool_calls", []),
            usage_metadata=getattr(message, "usage_metadata", None),
            response_metadata=message.response_metadata,
        )
        return ChatResult(generations=[ChatGeneration(message=final)])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        for chunk in self._chunks(messages, kwargs):
            if self.token_delay > 0 and chunk.text:
                time.sleep(self.token_delay)
            if run_manager is not None and chunk.text:
                run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        for chunk in self._chunks(messages, kwargs):
            # Sleeping (even 0 s) yields to the loop, so cancellation lands between tokens.
            await asyncio.sleep(self.token_delay if chunk.text else 0)
            if run_manager is not None and chunk.text:
                await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk

    def _chunks(self, messages: list[BaseMessage], kwargs: dict[str, Any]) -> list[ChatGenerationChunk]:
        """The reply as stream chunks: tokens (or one tool-call chunk), then usage."""
        planned = _plan(messages, _tool_names(kwargs))
        if isinstance(planned, _PlannedToolCall):
            pieces: list[AIMessageChunk] = [
                AIMessageChunk(
                    content="",
                    tool_call_chunks=[
                        {
                            "name": planned.name,
                            "args": json.dumps(planned.args),
                            "id": planned.call_id,
                            "index": 0,
                            "type": "tool_call_chunk",
                        }
                    ],
                )
            ]
            finish_reason = "tool_calls"
            completion_tokens = count_tokens_approximately(pieces)
        else:
            pieces = [AIMessageChunk(content=token) for token in _TOKEN.findall(planned)]
            finish_reason = "stop"
            # One streamed piece is one token of this model.
            completion_tokens = len(pieces)
        prompt_tokens = count_tokens_approximately(messages)
        pieces.append(
            AIMessageChunk(
                content="",
                usage_metadata={
                    "input_tokens": prompt_tokens,
                    "output_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
                response_metadata={"model_name": self.model_name, "finish_reason": finish_reason},
                chunk_position="last",
            )
        )
        return [ChatGenerationChunk(message=piece) for piece in pieces]
