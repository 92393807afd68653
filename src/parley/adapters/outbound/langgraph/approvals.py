"""Human approval of tool calls, in the graph: an ``approve`` node between the model and its tools.

When the model calls a tool named in ``TOOLS_REQUIRING_APPROVAL``, the ``approve`` node pauses the
run with LangGraph's :func:`~langgraph.types.interrupt` (the pause lives in the checkpoint, so it
survives a restart) before any tool of that model message runs; ``Command(resume=<decision>)``
answers it. One call is asked about per pass through the node (the node loops on itself), so
every interrupt is the first of its task and each resume value lands on the question it answers.

Decisions are kept in the graph state by tool-call id (:data:`DECISIONS`): the tool node then
runs an approved call, runs an edited one with the new arguments (the model message is rewritten
too, so the history says what really ran), and answers a rejected one with a tool result telling
the model the user refused, and why.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Literal

from langchain_core.messages import AIMessage, ToolMessage
from langgraph.graph import MessagesState
from langgraph.types import Command, interrupt

from parley.domain.approvals import ApprovalDecision, Approve, EditArguments, Reject

DECISIONS = "decisions"


class AgentState(MessagesState, total=False):
    """The graph's state: the messages, and the user's decisions by tool-call id."""

    decisions: dict[str, dict[str, Any]]


def decision_record(decision: ApprovalDecision) -> dict[str, Any]:
    """A decision as the JSON the checkpoint keeps (the resume value)."""
    match decision:
        case Approve():
            return {"decision": "approve"}
        case Reject(reason=reason):
            return {"decision": "reject", "reason": reason}
        case EditArguments(arguments=arguments):
            return {"decision": "edit", "arguments": arguments}


def rejection_text(record: dict[str, Any]) -> str:
    """What the model reads in place of a rejected call's result."""
    reason = str(record.get("reason") or "").strip()
    told = "The user rejected this tool call; it was not run."
    return f"{told} Reason: {reason}" if reason else told


def rejected(record: dict[str, Any] | None) -> bool:
    return record is not None and record.get("decision") == "reject"


def rejected_result(call: dict[str, Any], record: dict[str, Any]) -> ToolMessage:
    return ToolMessage(
        content=rejection_text(record), tool_call_id=call["id"] or "", name=call["name"], status="error"
    )


@dataclass(frozen=True, slots=True)
class ApprovalStep:
    """The ``approve`` node: asks about the next undecided call needing approval, else hands the
    calls to the tool node."""

    tools: frozenset[str]

    async def __call__(self, state: AgentState) -> Command[Literal["approve", "tools"]]:
        message = state["messages"][-1]
        decisions = dict(state.get("decisions") or {})
        if not isinstance(message, AIMessage):
            return Command(goto="tools")
        for call in message.tool_calls:
            call_id = call.get("id") or ""
            if call["name"] in self.tools and call_id not in decisions:
                record = interrupt({"tool": call["name"], "arguments": call["args"], "tool_call_id": call_id})
                decisions[call_id] = record
                update: dict[str, Any] = {DECISIONS: decisions}
                if record.get("decision") == "edit":
                    update["messages"] = [_with_arguments(message, call_id, record["arguments"])]
                return Command(goto="approve", update=update)
        return Command(goto="tools")


def _with_arguments(message: AIMessage, call_id: str, arguments: dict[str, Any]) -> AIMessage:
    """``message`` (same id: it replaces the original in the state) with one call's arguments edited."""
    calls = [
        {**call, "args": arguments} if call.get("id") == call_id else call for call in message.tool_calls
    ]
    return message.model_copy(update={"tool_calls": calls})


def needs_approval(message: Any, tools: Collection[str]) -> bool:
    """Whether ``message`` calls a tool needing approval."""
    return isinstance(message, AIMessage) and any(call["name"] in tools for call in message.tool_calls)
