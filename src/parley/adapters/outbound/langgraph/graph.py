"""The agent's LangGraph graph: a model node and a tool node in a loop.

``START -> model -> (tool calls? tools -> model : END)``. Nodes hand what happens, as
port events, straight to the run's sink (``configurable[EMIT]``): no callback handler
per token (``stream_mode="messages"``) and no hop through LangGraph's own stream and
a consumer task (``stream_mode="custom"``), which under load added a scheduling delay
to every token. The model node announces retries and usage itself:

- ``TokenDelta`` for each piece of AI text, as the model streams it;
- ``Usage`` once per completed model call;
- ``ModelRetry`` before each retry of a failed model call, and before moving on to a
  fallback model (``fallback`` names it);
- ``ToolCall`` once per tool execution, with its result.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.language_models import LanguageModelInput
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, ToolMessage
from langchain_core.messages.ai import add_ai_message_chunks
from langchain_core.messages.utils import count_tokens_approximately, message_chunk_to_message
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.config import get_config
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.prebuilt import ToolNode, tools_condition
from langgraph.prebuilt.tool_node import ToolCallRequest
from langgraph.types import Command

from parley.adapters.outbound.langgraph.approvals import (
    DECISIONS,
    AgentState,
    ApprovalStep,
    needs_approval,
    rejected,
    rejected_result,
)
from parley.adapters.outbound.langgraph.chat_model import NamedModel
from parley.adapters.outbound.langgraph.context import build_context, with_memories
from parley.adapters.outbound.langgraph.failures import RetryPolicy, call_with_fallbacks
from parley.domain.chat import storable_arguments, storable_text
from parley.ports.agent import (
    AgentEvent,
    EventSink,
    TokenDelta,
    ToolCall,
    Usage,
)

AgentGraph = CompiledStateGraph[AgentState, None, AgentState, AgentState]
STREAM_TOKENS = "parley_stream_tokens"  # configurable key: False -> one non-streamed model call
EMIT = "parley_emit"  # configurable key: the run's EventSink
MODEL_CURSOR = "parley_model_cursor"  # configurable key: the run's ModelCursor
MEMORIES = "parley_memories"  # configurable key: the user's recalled facts (a tuple of texts)
ModelUpdate = dict[str, list[BaseMessage]]
ChatRunnable = Runnable[LanguageModelInput, BaseMessage]


@dataclass(slots=True)
class ModelCursor:
    """Which of the models a run is using (one per run, in ``configurable[MODEL_CURSOR]``):
    once a fallback answered, the run's later model calls (after a tool) start with it instead
    of paying the failed model's retries again. A new run (turn) starts with the first model:
    nothing process-wide ever switches."""

    index: int = 0


@dataclass(frozen=True, slots=True)
class BoundModel:
    """A model with the tools bound, and the name reported when its provider names none."""

    name: str
    model: ChatRunnable


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelStep:
    """The model node: builds the context, calls the model, retries per ``policy`` and falls
    back to the next of ``models`` (the rules: :mod:`~parley.adapters.outbound.langgraph.failures`)."""

    models: Sequence[BoundModel]
    system_prompt: str
    context_budget: int
    policy: RetryPolicy

    async def __call__(self, state: AgentState) -> ModelUpdate:
        configurable = get_config().get("configurable", {})
        emit = _sink(configurable)
        stream_tokens = bool(configurable.get(STREAM_TOKENS, True))
        cursor = configurable.get(MODEL_CURSOR)
        cursor = cursor if isinstance(cursor, ModelCursor) else ModelCursor()
        system = with_memories(self.system_prompt, configurable.get(MEMORIES, ()))
        prompt = build_context(system, state["messages"], self.context_budget)

        def one_call(model: ChatRunnable) -> Callable[[list[str]], Awaitable[AIMessage]]:
            async def call(streamed: list[str]) -> AIMessage:
                if stream_tokens:
                    return await self._call(model, prompt, emit, streamed)
                return await self._call_whole(model, prompt, emit)

            return call

        calls = [(bound.name, one_call(bound.model)) for bound in self.models]
        first = cursor.index
        cursor.index, reply = await call_with_fallbacks(calls, policy=self.policy, emit=emit, first=first)
        emit(self._usage(reply, prompt, self.models[cursor.index].name))
        return {"messages": [reply]}

    async def _call(
        self,
        model: ChatRunnable,
        prompt: list[BaseMessage],
        emit: EventSink,
        streamed: list[str],
    ) -> AIMessage:
        """Stream one model call, forwarding text as it comes; ``streamed`` collects it."""
        chunks: list[AIMessageChunk] = []
        async for chunk in model.astream(prompt):
            text = storable_text(chunk.text)
            if text:
                streamed.append(text)
                emit(TokenDelta(text))
            if isinstance(chunk, AIMessageChunk):
                chunks.append(chunk)
        if not chunks:
            return AIMessage(content="")
        # One merge at the end: merging chunk by chunk is quadratic (~55 us/token at 2k tokens).
        message = message_chunk_to_message(add_ai_message_chunks(chunks[0], *chunks[1:]))
        return _storable(message if isinstance(message, AIMessage) else AIMessage(content=message.text))

    async def _call_whole(self, model: ChatRunnable, prompt: list[BaseMessage], emit: EventSink) -> AIMessage:
        """One non-streamed model call; its text goes out as a single delta."""
        message = await model.ainvoke(prompt)
        reply = _storable(message if isinstance(message, AIMessage) else AIMessage(content=message.text))
        if reply.text:
            emit(TokenDelta(reply.text))
        return reply

    @staticmethod
    def _usage(reply: AIMessage, prompt: list[BaseMessage], name: str) -> Usage:
        """Provider-reported usage, naming the model that answered (the provider's name for it,
        else ``name``); approximated when the provider reports none."""
        model = str(reply.response_metadata.get("model_name") or name)
        usage = reply.usage_metadata
        if usage is None:
            return Usage(model, count_tokens_approximately(prompt), count_tokens_approximately([reply]))
        return Usage(model, usage["input_tokens"], usage["output_tokens"])


async def report_tool_call(
    request: ToolCallRequest,
    execute: Callable[[ToolCallRequest], Awaitable[ToolMessage | Command[Any]]],
) -> ToolMessage | Command[Any]:
    """Run one tool call and announce it, with its result, to the run's sink; a call the user
    rejected is not run: its result tells the model so (see :mod:`.approvals`)."""
    call = request.tool_call
    state = request.state if isinstance(request.state, dict) else {}
    record = (state.get(DECISIONS) or {}).get(call.get("id") or "")
    result = (
        rejected_result(dict(call), record)
        if record is not None and rejected(record)
        else await execute(request)
    )
    if isinstance(result, ToolMessage):
        emit = _sink(request.runtime.config.get("configurable", {}))
        # Lone surrogates in the model's arguments could not be sent as UTF-8 (JSON escapes NUL).
        arguments = json.loads(storable_text(json.dumps(call["args"], ensure_ascii=False)))
        emit(ToolCall(name=call["name"], arguments=arguments, result=storable_text(result.text)))
    return result


def _storable(reply: AIMessage) -> AIMessage:
    """The reply with storable text (see :func:`storable_text`), as the deltas were sent, so the
    agent's memory, the stored reply and the stream agree; its tool calls with storable names and
    arguments (:func:`storable_arguments`): a lone surrogate in them made the checkpoint fail."""
    if isinstance(reply.content, str):
        clean = storable_text(reply.content)
        if clean is not reply.content:
            reply.content = clean
    if reply.tool_calls:
        calls = [
            {**call, "name": storable_text(call["name"]), "args": storable_arguments(call["args"])}
            for call in reply.tool_calls
        ]
        if calls != reply.tool_calls:
            reply.tool_calls = calls  # type: ignore[assignment]
    return reply


def _sink(configurable: dict[str, Any]) -> EventSink:
    """The run's event sink; events are dropped when the graph runs without one."""
    emit = configurable.get(EMIT)
    return emit if callable(emit) else _drop


def _drop(_: AgentEvent) -> None:
    """The sink of a run that has none."""


def build_agent_graph(
    *,
    models: Sequence[NamedModel],
    tools: Sequence[BaseTool],
    system_prompt: str,
    context_budget: int,
    policy: RetryPolicy,
    checkpointer: BaseCheckpointSaver[str],
    approval_tools: frozenset[str] = frozenset(),
) -> AgentGraph:
    """Compile the graph; ``checkpointer`` keeps each thread's messages between turns.
    ``models``: the model, then its fallbacks, in order. With ``approval_tools``, an ``approve``
    node sits between the model and the tools (:mod:`.approvals`); without, the graph is the
    plain loop."""
    step = ModelStep(
        models=[BoundModel(named.name, named.model.bind_tools(tools)) for named in models],
        system_prompt=system_prompt,
        context_budget=context_budget,
        policy=policy,
    )
    builder = StateGraph(AgentState)
    builder.add_node("model", step)
    # Tool failures become a tool result the model can read, not a failed turn.
    builder.add_node("tools", ToolNode(tools, handle_tool_errors=True, awrap_tool_call=report_tool_call))
    builder.add_edge(START, "model")
    if approval_tools:
        builder.add_node("approve", ApprovalStep(approval_tools), destinations=("approve", "tools"))

        def after_model(state: AgentState) -> str:
            if needs_approval(state["messages"][-1], approval_tools):
                return "approve"
            return tools_condition(dict(state))

        builder.add_conditional_edges(
            "model", after_model, {"approve": "approve", "tools": "tools", END: END}
        )
    else:
        builder.add_conditional_edges("model", tools_condition, {"tools": "tools", END: END})
    builder.add_edge("tools", "model")
    return builder.compile(checkpointer=checkpointer)
