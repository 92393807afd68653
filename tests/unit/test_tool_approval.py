"""Human approval of tool calls: the domain's rules for a decision, and the graph's ``approve`` node
(one question per call needing approval, decisions applied per call, nothing run before all are
decided), on an in-memory checkpointer with a scripted model."""

from __future__ import annotations

import json
from typing import Any

import pytest
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from parley.adapters.outbound.langgraph.approvals import decision_record
from parley.adapters.outbound.langgraph.chat_model import NamedModel
from parley.adapters.outbound.langgraph.failures import RetryPolicy
from parley.adapters.outbound.langgraph.graph import EMIT, STREAM_TOKENS, AgentGraph, build_agent_graph
from parley.adapters.outbound.langgraph.tools import default_tools
from parley.domain.approvals import Approve, EditArguments, Reject
from parley.domain.chat import storable_arguments
from parley.domain.errors import ValidationFailed
from parley.ports.agent import AgentEvent, ToolCall

# ---------------------------------------------------------------- the domain's rules


def test_a_rejection_reason_is_kept_as_written_within_its_limits() -> None:
    assert Reject.parse("  too <b>costly</b>\n").reason == "  too <b>costly</b>\n"
    assert Reject.parse(None).reason == ""
    with pytest.raises(ValidationFailed):
        Reject.parse("x" * 2001)


@pytest.mark.parametrize("hostile", ["a\x00b", "a\ud800b"])
def test_unstorable_text_is_refused_in_a_reason_and_anywhere_in_edited_arguments(hostile: str) -> None:
    with pytest.raises(ValidationFailed):
        Reject.parse(hostile)
    for arguments in ({"k": hostile}, {hostile: 1}, {"a": [{"b": [hostile]}]}):
        with pytest.raises(ValidationFailed) as refused:
            EditArguments.parse(arguments)
        assert refused.value.problems[0].field == "arguments"


def test_edited_arguments_are_bounded_and_deep_nesting_is_refused_not_crashed() -> None:
    assert EditArguments.parse({"expression": "2 + 2"}).arguments == {"expression": "2 + 2"}
    with pytest.raises(ValidationFailed):
        EditArguments.parse({"text": "x" * 40_000})
    deep: dict[str, Any] = {}
    node = deep
    for _ in range(5_000):  # deeper than json.dumps can recurse
        node["n"] = {}
        node = node["n"]
    with pytest.raises(ValidationFailed):
        EditArguments.parse(deep)


# ---------------------------------------------------------------- the graph


class ScriptedModel(BaseChatModel):
    """Answers with the scripted messages in order; records what it was sent."""

    replies: list[AIMessage]
    prompts: list[list[BaseMessage]] = []

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        self.prompts.append(list(messages))
        return ChatResult(generations=[ChatGeneration(message=self.replies.pop(0))])

    def bind_tools(self, tools: Any, **kwargs: Any) -> ScriptedModel:
        return self


TWO_CALLS = AIMessage(
    content="Let me check.",
    tool_calls=[
        {"name": "calculator", "args": {"expression": "6 * 7"}, "id": "call-sum", "type": "tool_call"},
        {"name": "current_time", "args": {}, "id": "call-time", "type": "tool_call"},
    ],
)


def _graph(model: ScriptedModel, approval_tools: frozenset[str]) -> AgentGraph:
    return build_agent_graph(
        models=[NamedModel("scripted", model)],
        tools=default_tools(),
        system_prompt="test",
        context_budget=8000,
        policy=RetryPolicy(max_attempts=1),
        checkpointer=InMemorySaver(),
        approval_tools=approval_tools,
    )


async def _step(graph: AgentGraph, graph_input: Any, events: list[AgentEvent]) -> dict[str, Any]:
    # Whole model calls (STREAM_TOKENS off): the scripted model has no streaming of its own.
    config: Any = {"configurable": {"thread_id": "t", EMIT: events.append, STREAM_TOKENS: False}}
    return dict(await graph.ainvoke(graph_input, config, durability="exit"))


def _asked(result: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(i.value["tool"], i.value["arguments"]) for i in result.get("__interrupt__", [])]


async def test_each_call_needing_approval_is_asked_in_turn_and_nothing_runs_until_all_are_decided() -> None:
    model = ScriptedModel(replies=[TWO_CALLS, AIMessage(content="Done.")], prompts=[])
    graph = _graph(model, frozenset({"calculator", "current_time"}))
    events: list[AgentEvent] = []

    first = await _step(graph, {"messages": [HumanMessage("sum and time")]}, events)
    assert _asked(first) == [("calculator", {"expression": "6 * 7"})]
    second = await _step(graph, Command(resume=decision_record(Reject("not now"))), events)
    assert _asked(second) == [("current_time", {})]
    assert [e for e in events if isinstance(e, ToolCall)] == []  # nothing ran while one was undecided

    last = await _step(graph, Command(resume=decision_record(Approve())), events)

    assert _asked(last) == []
    tools = [e for e in events if isinstance(e, ToolCall)]
    assert [t.name for t in tools] == ["calculator", "current_time"]
    assert tools[0].result == "The user rejected this tool call; it was not run. Reason: not now"
    assert "rejected" not in tools[1].result
    told = [m for m in model.prompts[-1] if isinstance(m, ToolMessage)]
    assert next(m.content for m in told) == tools[0].result  # the model reads the reason
    assert last["messages"][-1].content == "Done."


async def test_an_edit_runs_the_call_with_the_new_arguments_and_the_history_shows_them() -> None:
    one_call = AIMessage(
        content="",
        tool_calls=[{"name": "calculator", "args": {"expression": "6 * 7"}, "id": "c1", "type": "tool_call"}],
    )
    model = ScriptedModel(replies=[one_call, AIMessage(content="It is 4.")], prompts=[])
    graph = _graph(model, frozenset({"calculator"}))
    events: list[AgentEvent] = []
    await _step(graph, {"messages": [HumanMessage("sum")]}, events)

    last = await _step(graph, Command(resume=decision_record(EditArguments({"expression": "2 + 2"}))), events)

    tools = [e for e in events if isinstance(e, ToolCall)]
    assert [(t.arguments, t.result) for t in tools] == [({"expression": "2 + 2"}, "4")]
    calls = [m for m in last["messages"] if isinstance(m, AIMessage) and m.tool_calls]
    assert [c["args"] for c in calls[0].tool_calls] == [{"expression": "2 + 2"}]


async def test_a_tool_not_named_runs_at_once_and_without_approval_tools_the_graph_has_no_approve_node() -> (
    None
):
    model = ScriptedModel(replies=[TWO_CALLS, AIMessage(content="Done.")], prompts=[])
    graph = _graph(model, frozenset({"a_tool_not_called"}))
    events: list[AgentEvent] = []

    result = await _step(graph, {"messages": [HumanMessage("sum and time")]}, events)

    assert _asked(result) == []
    assert [e.name for e in events if isinstance(e, ToolCall)] == ["calculator", "current_time"]
    plain = _graph(ScriptedModel(replies=[], prompts=[]), frozenset())
    assert "approve" not in plain.get_graph().nodes
    assert json.dumps(decision_record(Reject("why"))) == '{"decision": "reject", "reason": "why"}'


def test_a_models_arguments_are_made_storable_at_any_depth_keeping_their_shape() -> None:
    arguments = {"a\x00": ["x\ud800", {"b": "\x00", "n": 1, "none": None}], "ok": "fine"}

    assert storable_arguments(arguments) == {
        "a\ufffd": ["x\ufffd", {"b": "\ufffd", "n": 1, "none": None}],
        "ok": "fine",
    }
    deep: dict[str, Any] = {}
    node = deep
    for _ in range(5_000):
        node["n"] = {}
        node = node["n"]
    node["s"] = "\x00"
    cleaned = storable_arguments(deep)
    for _ in range(5_000):
        cleaned = cleaned["n"]
    assert cleaned == {"s": "\ufffd"}
